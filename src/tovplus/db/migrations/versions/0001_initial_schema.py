"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 20:41:10.056123
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import tovplus.db.types

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('activity',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('occurred_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('occasion_id', sa.String(length=40), nullable=True),
    sa.Column('connection_id', sa.String(length=40), nullable=True),
    sa.Column('integration_key', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity'))
    )
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_connection_id_id'), ['connection_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_activity_kind_id'), ['kind', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_activity_occasion_id_id'), ['occasion_id', 'id'], unique=False)

    op.create_table('grants',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.String(length=80), nullable=False),
    sa.Column('scope_type', sa.String(length=16), nullable=False),
    sa.Column('scope_occasion_id', sa.String(length=40), nullable=True),
    sa.Column('scope_event_id', sa.String(length=40), nullable=True),
    sa.Column('action_key', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grants'))
    )
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grants_subject_id_revoked_at'), ['subject_id', 'revoked_at'], unique=False)

    op.create_table('leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=80), nullable=False),
    sa.Column('expires_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_leases'))
    )
    op.create_table('users',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=True),
    sa.Column('created_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('occasions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('created_by', sa.String(length=40), nullable=False),
    sa.Column('created_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_occasions_created_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_occasions'))
    )
    op.create_table('user_tokens',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('created_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_tokens_token_hash'))
    )
    with op.batch_alter_table('user_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('occasion_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('starts_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['occasion_id'], ['occasions.id'], name=op.f('fk_events_occasion_id_occasions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_occasion_id_id'), ['occasion_id', 'id'], unique=False)

    op.create_table('guests',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('occasion_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('created_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['occasion_id'], ['occasions.id'], name=op.f('fk_guests_occasion_id_occasions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_guests'))
    )
    with op.batch_alter_table('guests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_guests_occasion_id_id'), ['occasion_id', 'id'], unique=False)

    op.create_table('occasion_planners',
    sa.Column('occasion_id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['occasion_id'], ['occasions.id'], name=op.f('fk_occasion_planners_occasion_id_occasions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_occasion_planners_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('occasion_id', 'user_id', name=op.f('pk_occasion_planners'))
    )
    with op.batch_alter_table('occasion_planners', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_occasion_planners_user_id'), ['user_id'], unique=False)

    op.create_table('webhook_endpoints',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('occasion_id', sa.String(length=40), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('event_types', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('secret_key_id', sa.String(length=64), nullable=False),
    sa.Column('secret_nonce', sa.LargeBinary(length=12), nullable=False),
    sa.Column('secret_ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('disabled_reason', sa.String(length=500), nullable=True),
    sa.Column('failing_since', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['occasion_id'], ['occasions.id'], name=op.f('fk_webhook_endpoints_occasion_id_occasions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints'))
    )
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_endpoints_occasion_id_id'), ['occasion_id', 'id'], unique=False)

    op.create_table('connections',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('occasion_id', sa.String(length=40), nullable=False),
    sa.Column('integration_key', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('health', sa.String(length=16), nullable=False),
    sa.Column('health_reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('sync_health', sa.String(length=16), nullable=False),
    sa.Column('sync_health_reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('config', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('scope_type', sa.String(length=16), nullable=False),
    sa.Column('scope_event_id', sa.String(length=40), nullable=True),
    sa.Column('action_keys', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('sync_interval_seconds', sa.Integer(), nullable=True),
    sa.Column('next_sync_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_sync_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_sync_status', sa.String(length=16), nullable=True),
    sa.Column('last_success_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['occasion_id'], ['occasions.id'], name=op.f('fk_connections_occasion_id_occasions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['scope_event_id'], ['events.id'], name=op.f('fk_connections_scope_event_id_events'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_connections'))
    )
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_connections_health_id'), ['health', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_connections_integration_key_id'), ['integration_key', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_connections_occasion_id_id'), ['occasion_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_connections_state_health_id'), ['state', 'health', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_connections_state_next_sync_at'), ['state', 'next_sync_at'], unique=False)

    op.create_table('webhook_deliveries',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('endpoint_id', sa.String(length=40), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=80), nullable=True),
    sa.Column('lease_expires_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], name=op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries'))
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_endpoint_id_id'), ['endpoint_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_state_lease_expires_at'), ['state', 'lease_expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_state_next_attempt_at'), ['state', 'next_attempt_at'], unique=False)

    op.create_table('callback_deliveries',
    sa.Column('connection_id', sa.String(length=40), nullable=False),
    sa.Column('delivery_id', sa.String(length=200), nullable=False),
    sa.Column('activity_id', sa.String(length=40), nullable=False),
    sa.Column('received_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_callback_deliveries_connection_id_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('connection_id', 'delivery_id', name=op.f('pk_callback_deliveries'))
    )
    op.create_table('connection_secrets',
    sa.Column('connection_id', sa.String(length=40), nullable=False),
    sa.Column('field_key', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('nonce', sa.LargeBinary(length=12), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('redacted', sa.String(length=32), nullable=False),
    sa.Column('updated_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_connection_secrets_connection_id_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('connection_id', 'field_key', name=op.f('pk_connection_secrets'))
    )
    op.create_table('integration_principals',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.String(length=80), nullable=False),
    sa.Column('connection_id', sa.String(length=40), nullable=False),
    sa.Column('scope_type', sa.String(length=16), nullable=False),
    sa.Column('scope_occasion_id', sa.String(length=40), nullable=True),
    sa.Column('scope_event_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_integration_principals_connection_id_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_integration_principals')),
    sa.UniqueConstraint('connection_id', name=op.f('uq_integration_principals_connection_id')),
    sa.UniqueConstraint('subject_id', name=op.f('uq_integration_principals_subject_id'))
    )
    op.create_table('sync_runs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('connection_id', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.String(length=80), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=80), nullable=True),
    sa.Column('lease_expires_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('records_written', sa.Integer(), nullable=False),
    sa.Column('created_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_sync_runs_connection_id_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_runs'))
    )
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sync_runs_connection_id_id'), ['connection_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sync_runs_state_lease_expires_at'), ['state', 'lease_expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sync_runs_state_next_attempt_at'), ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index('uq_sync_runs_active_connection', ['connection_id'], unique=True, sqlite_where=sa.text("state IN ('queued', 'running')"), postgresql_where=sa.text("state IN ('queued', 'running')"))

    op.create_table('synced_records',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('connection_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('source_updated_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_synced_records_connection_id_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_synced_records')),
    sa.UniqueConstraint('connection_id', 'kind', 'external_id', name=op.f('uq_synced_records_connection_id_kind_external_id'))
    )
    with op.batch_alter_table('synced_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_synced_records_connection_id_id'), ['connection_id', 'id'], unique=False)

    op.create_table('webhook_attempts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('delivery_id', sa.String(length=40), nullable=False),
    sa.Column('attempted_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('duration_ms', sa.Float(), nullable=False),
    sa.Column('succeeded', sa.Boolean(), nullable=False),
    sa.Column('response_excerpt', sa.String(length=1000), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['delivery_id'], ['webhook_deliveries.id'], name=op.f('fk_webhook_attempts_delivery_id_webhook_deliveries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempts'))
    )
    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_attempts_delivery_id_id'), ['delivery_id', 'id'], unique=False)

    op.create_table('integration_keys',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('principal_id', sa.String(length=40), nullable=False),
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', tovplus.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['principal_id'], ['integration_principals.id'], name=op.f('fk_integration_keys_principal_id_integration_principals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_integration_keys')),
    sa.UniqueConstraint('key_id', name=op.f('uq_integration_keys_key_id'))
    )
    with op.batch_alter_table('integration_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_integration_keys_principal_id_revoked_at'), ['principal_id', 'revoked_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('integration_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_integration_keys_principal_id_revoked_at'))

    op.drop_table('integration_keys')
    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_attempts_delivery_id_id'))

    op.drop_table('webhook_attempts')
    with op.batch_alter_table('synced_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_synced_records_connection_id_id'))

    op.drop_table('synced_records')
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.drop_index('uq_sync_runs_active_connection', sqlite_where=sa.text("state IN ('queued', 'running')"), postgresql_where=sa.text("state IN ('queued', 'running')"))
        batch_op.drop_index(batch_op.f('ix_sync_runs_state_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_sync_runs_state_lease_expires_at'))
        batch_op.drop_index(batch_op.f('ix_sync_runs_connection_id_id'))

    op.drop_table('sync_runs')
    op.drop_table('integration_principals')
    op.drop_table('connection_secrets')
    op.drop_table('callback_deliveries')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_state_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_state_lease_expires_at'))
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_endpoint_id_id'))

    op.drop_table('webhook_deliveries')
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_connections_state_next_sync_at'))
        batch_op.drop_index(batch_op.f('ix_connections_state_health_id'))
        batch_op.drop_index(batch_op.f('ix_connections_occasion_id_id'))
        batch_op.drop_index(batch_op.f('ix_connections_integration_key_id'))
        batch_op.drop_index(batch_op.f('ix_connections_health_id'))

    op.drop_table('connections')
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_endpoints_occasion_id_id'))

    op.drop_table('webhook_endpoints')
    with op.batch_alter_table('occasion_planners', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_occasion_planners_user_id'))

    op.drop_table('occasion_planners')
    with op.batch_alter_table('guests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_guests_occasion_id_id'))

    op.drop_table('guests')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_occasion_id_id'))

    op.drop_table('events')
    with op.batch_alter_table('user_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_tokens_user_id'))

    op.drop_table('user_tokens')
    op.drop_table('occasions')
    op.drop_table('users')
    op.drop_table('leases')
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grants_subject_id_revoked_at'))

    op.drop_table('grants')
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_occasion_id_id'))
        batch_op.drop_index(batch_op.f('ix_activity_kind_id'))
        batch_op.drop_index(batch_op.f('ix_activity_connection_id_id'))

    op.drop_table('activity')
