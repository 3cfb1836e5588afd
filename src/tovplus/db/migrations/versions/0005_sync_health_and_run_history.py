"""sync health while retrying, run history, paused schedules, folded activity

Additive only (old code keeps working against this schema):

* ``sync_runs.records_deleted`` (how many records the run marked deleted; filled by the
  deletions work) and ``sync_runs.retry_reason`` (why a queued run waits to retry);
* ``connections.sync_failures_in_row`` (failed runs since the last success) and
  ``connections.sync_paused_at`` (set when the schedule paused after too many failures);
* ``activity.repeat_count`` (consecutive identical routine entries folded into one line).

``sync_runs.started_at`` / ``finished_at`` exist since 0001.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 13:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tovplus.db.types

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # add_column outside batch mode: SQLite adds these in place (nullable or with a default)
    op.add_column(
        'sync_runs', sa.Column('records_deleted', sa.Integer(), nullable=False, server_default='0')
    )
    op.add_column('sync_runs', sa.Column('retry_reason', sa.Text(), nullable=True))
    op.add_column(
        'connections', sa.Column('sync_failures_in_row', sa.Integer(), nullable=False, server_default='0')
    )
    op.add_column('connections', sa.Column('sync_paused_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column('activity', sa.Column('repeat_count', sa.Integer(), nullable=False, server_default='1'))


def downgrade() -> None:
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_column('repeat_count')
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.drop_column('sync_paused_at')
        batch_op.drop_column('sync_failures_in_row')
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.drop_column('retry_reason')
        batch_op.drop_column('records_deleted')
