"""callback signing secrets and rejection counts

Each issued key gets room for its own callback signing secret (AES-GCM ciphertext; the old
scheme keyed the HMAC with the stored ``secret_hash``), and ``callback_rejections`` counts every
401 a connection's callbacks get, by minute and reason. Additive only: nullable columns and a
new table. A migration cannot encrypt (it has no keyring), so existing keys get no secret here:
their connections' signed callbacks are refused until the key is rotated (docs/security.md).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 11:29:48.932814
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tovplus.db.types

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('callback_rejections',
    sa.Column('connection_id', sa.String(length=40), nullable=False),
    sa.Column('minute', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('last_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_callback_rejections_connection_id_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('connection_id', 'minute', 'reason', name=op.f('pk_callback_rejections'))
    )
    with op.batch_alter_table('integration_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('callback_secret_key_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('callback_secret_nonce', sa.LargeBinary(length=12), nullable=True))
        batch_op.add_column(sa.Column('callback_secret_ciphertext', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('integration_keys', schema=None) as batch_op:
        batch_op.drop_column('callback_secret_ciphertext')
        batch_op.drop_column('callback_secret_nonce')
        batch_op.drop_column('callback_secret_key_id')

    op.drop_table('callback_rejections')
