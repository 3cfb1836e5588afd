"""traceparent on queued work

Additive only (old code keeps working against this schema): a nullable ``traceparent``
(W3C trace context, 55 characters) on ``sync_runs`` and ``webhook_deliveries``, so the
worker's span continues the trace of the request that queued the row.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # add_column outside batch mode: SQLite adds a nullable column in place (no table copy)
    op.add_column('sync_runs', sa.Column('traceparent', sa.String(length=55), nullable=True))
    op.add_column('webhook_deliveries', sa.Column('traceparent', sa.String(length=55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_column('traceparent')
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.drop_column('traceparent')
