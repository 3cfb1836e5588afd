"""Connection counts per (state, health), kept by triggers, for the admin summary

Additive only: one new table, ``connection_counts``, and triggers on ``connections`` that append
``+1``/``-1`` rows to it on every insert, delete and change of ``state`` or ``health`` (SQLite
triggers; on PostgreSQL one plpgsql function, row triggers, and a TRUNCATE trigger). Append-only,
so concurrent writers never lock a shared counter row (two transactions moving connections
between the same pairs in opposite directions would deadlock on counter rows). The table is
backfilled from the connections in the same transaction, after the triggers exist: on
PostgreSQL creating them locks out writers to ``connections`` until the migration commits, on
SQLite the migration holds the write lock, so no change is counted twice or missed.

A later migration that rebuilds ``connections`` on SQLite (``batch_alter_table`` with a
"move and copy") drops these triggers and must create them again (``SQLITE_TRIGGERS``);
tests/connections/test_connection_counts.py fails when they are missing.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ADD = "INSERT INTO connection_counts (state, health, n) VALUES ({row}.state, {row}.health, {n});"

SQLITE_TRIGGERS: tuple[str, ...] = (
    "CREATE TRIGGER connection_counts_on_insert AFTER INSERT ON connections BEGIN "
    + _ADD.format(row="NEW", n=1)
    + " END",
    "CREATE TRIGGER connection_counts_on_delete AFTER DELETE ON connections BEGIN "
    + _ADD.format(row="OLD", n=-1)
    + " END",
    "CREATE TRIGGER connection_counts_on_update AFTER UPDATE OF state, health ON connections"
    " WHEN OLD.state IS NOT NEW.state OR OLD.health IS NOT NEW.health BEGIN "
    + _ADD.format(row="OLD", n=-1)
    + " "
    + _ADD.format(row="NEW", n=1)
    + " END",
)

POSTGRESQL_TRIGGERS: tuple[str, ...] = (
    "CREATE FUNCTION connection_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " IF TG_OP IN ('UPDATE', 'DELETE') THEN " + _ADD.format(row="OLD", n=-1) + " END IF;"
    " IF TG_OP IN ('INSERT', 'UPDATE') THEN " + _ADD.format(row="NEW", n=1) + " END IF;"
    " RETURN NULL; END $$",
    "CREATE FUNCTION connection_counts_clear() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " DELETE FROM connection_counts; RETURN NULL; END $$",
    "CREATE TRIGGER connection_counts_on_insert_delete AFTER INSERT OR DELETE ON connections"
    " FOR EACH ROW EXECUTE FUNCTION connection_counts_track()",
    "CREATE TRIGGER connection_counts_on_update AFTER UPDATE OF state, health ON connections FOR EACH ROW"
    " WHEN (OLD.state IS DISTINCT FROM NEW.state OR OLD.health IS DISTINCT FROM NEW.health)"
    " EXECUTE FUNCTION connection_counts_track()",
    "CREATE TRIGGER connection_counts_on_truncate AFTER TRUNCATE ON connections"
    " FOR EACH STATEMENT EXECUTE FUNCTION connection_counts_clear()",
)

BACKFILL = (
    "INSERT INTO connection_counts (state, health, n)"
    " SELECT state, health, count(*) FROM connections GROUP BY state, health"
)


def upgrade() -> None:
    op.create_table('connection_counts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('health', sa.String(length=16), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_connection_counts'))
    )
    postgresql = op.get_context().dialect.name == "postgresql"
    for statement in (*(POSTGRESQL_TRIGGERS if postgresql else SQLITE_TRIGGERS), BACKFILL):
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER connection_counts_on_truncate ON connections")
        op.execute("DROP TRIGGER connection_counts_on_update ON connections")
        op.execute("DROP TRIGGER connection_counts_on_insert_delete ON connections")
        op.execute("DROP FUNCTION connection_counts_clear()")
        op.execute("DROP FUNCTION connection_counts_track()")
    else:
        for name in ("on_update", "on_delete", "on_insert"):
            op.execute(f"DROP TRIGGER connection_counts_{name}")
    op.drop_table('connection_counts')
