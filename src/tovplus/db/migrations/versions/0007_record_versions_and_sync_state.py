"""record versions, deletions and adapter-owned sync state

Additive only (old code keeps working against this schema): nullable columns.

* ``synced_records.version_at``: the time of the stored version (the partner's ``updated_at``,
  else when TOV Plus received it); a write with an older version never replaces it. Rows written
  before this revision have none: the code compares against
  ``COALESCE(version_at, source_updated_at, updated_at)``.
* ``synced_records.deleted_at``: set when the partner reported a deletion or a full run did not
  see the record; ``seen_at``: when a full run last saw it (its deletion check).
* ``connections.sync_state``: the adapter's opaque state (cursor) from its last successful run.
* ``sync_runs.checkpoint``: a run's last checkpoint (adapter state and the counts committed so
  far), so a run killed between pages resumes after the last committed one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 13:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tovplus.db.types

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    # add_column outside batch mode: SQLite adds a nullable column in place (no table copy)
    op.add_column('synced_records', sa.Column('version_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column('synced_records', sa.Column('deleted_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column('synced_records', sa.Column('seen_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column('connections', sa.Column('sync_state', _JSON, nullable=True))
    op.add_column('sync_runs', sa.Column('checkpoint', _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.drop_column('checkpoint')
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.drop_column('sync_state')
    with op.batch_alter_table('synced_records', schema=None) as batch_op:
        batch_op.drop_column('seen_at')
        batch_op.drop_column('deleted_at')
        batch_op.drop_column('version_at')
