"""connection labels and occasion time zones

Additive only (old code keeps working against this schema): a nullable ``label`` on
``connections`` (the planner's own name for it, searched on the admin page) and
``time_zone`` on ``occasions`` (an IANA zone the pages show times in; server default ``UTC``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 13:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # add_column outside batch mode: SQLite adds these in place (no table copy)
    op.add_column('connections', sa.Column('label', sa.String(length=80), nullable=True))
    op.add_column(
        'occasions',
        sa.Column('time_zone', sa.String(length=64), server_default='UTC', nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table('occasions', schema=None) as batch_op:
        batch_op.drop_column('time_zone')
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.drop_column('label')
