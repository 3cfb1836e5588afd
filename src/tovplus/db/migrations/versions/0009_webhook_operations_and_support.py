"""webhook operations, adapter suspension, in-app notices

Additive only: on ``webhook_endpoints`` the signing secret before the last rotation (sealed like
the current one, valid until ``previous_secret_expires_at``), who disabled it and when, and a
soft ``deleted_at``; on ``connections`` the admin's suspension of an adapter
(``suspended_at``, ``suspended_reason``); a new ``notices`` table ("Needs attention").

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 13:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tovplus.db.types

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Tables are locked in the order the application writes them (occasions, connections,
    # webhook_endpoints), so on PostgreSQL this never deadlocks with a running release's writes.
    op.create_table('notices',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('occasion_id', sa.String(length=40), nullable=False),
    sa.Column('connection_id', sa.String(length=40), nullable=True),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('created_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('cleared_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cleared_by', sa.String(length=80), nullable=True),
    sa.ForeignKeyConstraint(['occasion_id'], ['occasions.id'], name=op.f('fk_notices_occasion_id_occasions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_notices_connection_id_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notices'))
    )
    op.add_column('connections', sa.Column('suspended_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column('connections', sa.Column('suspended_reason', sa.String(length=500), nullable=True))
    # add_column outside batch mode: SQLite adds a nullable column in place (no table copy)
    op.add_column('webhook_endpoints', sa.Column('previous_secret_key_id', sa.String(length=64), nullable=True))
    op.add_column('webhook_endpoints', sa.Column('previous_secret_nonce', sa.LargeBinary(length=12), nullable=True))
    op.add_column('webhook_endpoints', sa.Column('previous_secret_ciphertext', sa.LargeBinary(), nullable=True))
    op.add_column('webhook_endpoints', sa.Column('previous_secret_expires_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column('webhook_endpoints', sa.Column('disabled_by', sa.String(length=80), nullable=True))
    op.add_column('webhook_endpoints', sa.Column('disabled_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True))
    op.add_column('webhook_endpoints', sa.Column('deleted_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notices_occasion_id_cleared_at_id'), ['occasion_id', 'cleared_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notices_occasion_id_cleared_at_id'))
    op.drop_table('notices')
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.drop_column('suspended_reason')
        batch_op.drop_column('suspended_at')
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        for name in (
            'deleted_at', 'disabled_at', 'disabled_by', 'previous_secret_expires_at',
            'previous_secret_ciphertext', 'previous_secret_nonce', 'previous_secret_key_id',
        ):
            batch_op.drop_column(name)
