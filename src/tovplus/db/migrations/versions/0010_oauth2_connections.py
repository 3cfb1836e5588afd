"""OAuth2 connections: operator clients, authorization states, grants with a fenced refresh lease

Additive only: three new tables. ``oauth_clients`` holds each ``oauth2`` adapter's client (the
secret sealed); ``oauth_states`` the single-use, expiring ``state`` of each authorization attempt
(its hash, bound to a user and a connection, with the sealed PKCE verifier); ``oauth_grants`` one
connection's tokens (sealed), its authorization status and its refresh lease.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 16:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tovplus.db.types

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('oauth_clients',
    sa.Column('integration_key', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=500), nullable=False),
    sa.Column('secret_key_id', sa.String(length=64), nullable=False),
    sa.Column('secret_nonce', sa.LargeBinary(length=12), nullable=False),
    sa.Column('secret_ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('updated_by', sa.String(length=80), nullable=False),
    sa.Column('updated_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('integration_key', name=op.f('pk_oauth_clients'))
    )
    op.create_table('oauth_states',
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('connection_id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('verifier_key_id', sa.String(length=64), nullable=True),
    sa.Column('verifier_nonce', sa.LargeBinary(length=12), nullable=True),
    sa.Column('verifier_ciphertext', sa.LargeBinary(), nullable=True),
    sa.Column('redirect_uri', sa.String(length=2048), nullable=False),
    sa.Column('return_to', sa.String(length=2048), nullable=True),
    sa.Column('created_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_oauth_states_connection_id_connections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_oauth_states_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('state_hash', name=op.f('pk_oauth_states'))
    )
    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_states_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_oauth_states_connection_id'), ['connection_id'], unique=False)
    op.create_table('oauth_grants',
    sa.Column('connection_id', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('scopes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('access_key_id', sa.String(length=64), nullable=True),
    sa.Column('access_nonce', sa.LargeBinary(length=12), nullable=True),
    sa.Column('access_ciphertext', sa.LargeBinary(), nullable=True),
    sa.Column('refresh_key_id', sa.String(length=64), nullable=True),
    sa.Column('refresh_nonce', sa.LargeBinary(length=12), nullable=True),
    sa.Column('refresh_ciphertext', sa.LargeBinary(), nullable=True),
    sa.Column('expires_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('token_version', sa.Integer(), server_default='0', nullable=False),
    sa.Column('lease_owner', sa.String(length=80), nullable=True),
    sa.Column('lease_expires_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_fence', sa.Integer(), server_default='0', nullable=False),
    sa.Column('authorized_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('authorized_by', sa.String(length=80), nullable=True),
    sa.Column('refreshed_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('updated_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_oauth_grants_connection_id_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('connection_id', name=op.f('pk_oauth_grants'))
    )


def downgrade() -> None:
    op.drop_table('oauth_grants')
    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_states_connection_id'))
        batch_op.drop_index(batch_op.f('ix_oauth_states_expires_at'))
    op.drop_table('oauth_states')
    op.drop_table('oauth_clients')
