"""action runs and the platform events outbox

Additive only: two new tables. ``action_runs`` holds every run of an adapter action (its id is
the ``Idempotency-Key`` each attempt sends; at most one queued coalescing run per connection and
action; a caller's idempotency key is unique per connection). ``platform_events`` is the outbox
that guest changes write in their own transaction and the dispatcher turns into action runs.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 13:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tovplus.db.types

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COALESCING_SQLITE = sa.text("state = 'queued' AND coalescing = 1")
_COALESCING_PG = sa.text("state = 'queued' AND coalescing")


def upgrade() -> None:
    op.create_table('action_runs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('connection_id', sa.String(length=40), nullable=False),
    sa.Column('action_key', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('trigger', sa.String(length=120), nullable=False),
    sa.Column('coalescing', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('input', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=80), nullable=True),
    sa.Column('lease_expires_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('summary', sa.String(length=500), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_action_runs_connection_id_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_action_runs')),
    sa.UniqueConstraint('connection_id', 'idempotency_key', name=op.f('uq_action_runs_connection_id_idempotency_key'))
    )
    with op.batch_alter_table('action_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_action_runs_connection_id_id'), ['connection_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_action_runs_state_lease_expires_at'), ['state', 'lease_expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_action_runs_state_next_attempt_at'), ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index('uq_action_runs_coalescing', ['connection_id', 'action_key'], unique=True, sqlite_where=_COALESCING_SQLITE, postgresql_where=_COALESCING_PG)

    op.create_table('platform_events',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('occasion_id', sa.String(length=40), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('subject_id', sa.String(length=40), nullable=True),
    sa.Column('occurred_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('dispatched_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['occasion_id'], ['occasions.id'], name=op.f('fk_platform_events_occasion_id_occasions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_platform_events'))
    )
    with op.batch_alter_table('platform_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_platform_events_dispatched_at_id'), ['dispatched_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('platform_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_platform_events_dispatched_at_id'))
    op.drop_table('platform_events')
    with op.batch_alter_table('action_runs', schema=None) as batch_op:
        batch_op.drop_index('uq_action_runs_coalescing', sqlite_where=_COALESCING_SQLITE, postgresql_where=_COALESCING_PG)
        batch_op.drop_index(batch_op.f('ix_action_runs_state_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_action_runs_state_lease_expires_at'))
        batch_op.drop_index(batch_op.f('ix_action_runs_connection_id_id'))
    op.drop_table('action_runs')
