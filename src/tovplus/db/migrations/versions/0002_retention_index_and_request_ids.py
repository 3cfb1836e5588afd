"""retention index on callback_deliveries; request ids on queued work

Additive only (old code keeps working against this schema): an index on
``callback_deliveries.activity_id`` (the retention pruner's order) and a nullable
``request_id`` on ``sync_runs`` and ``webhook_deliveries``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # IF NOT EXISTS: on a large PostgreSQL table an operator may build it first without blocking
    # callbacks (CREATE INDEX CONCURRENTLY ...; docs/operations.md), and this step is then a no-op
    op.create_index(
        op.f('ix_callback_deliveries_activity_id'), 'callback_deliveries', ['activity_id'], unique=False,
        if_not_exists=True,
    )
    # add_column outside batch mode: SQLite adds a nullable column in place (no table copy)
    op.add_column('sync_runs', sa.Column('request_id', sa.String(length=64), nullable=True))
    op.add_column('webhook_deliveries', sa.Column('request_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_column('request_id')
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.drop_column('request_id')
    with op.batch_alter_table('callback_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_callback_deliveries_activity_id'))
