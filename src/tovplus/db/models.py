"""The durable schema. Every change here comes with an Alembic migration
(``tests/db/test_migrations.py`` fails when models and migrations disagree)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tovplus.db.types import JSONType, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
    }


def _id() -> Mapped[str]:
    return mapped_column(String(40), primary_key=True)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=utcnow, nullable=False)


# --- people and the platform's own objects ------------------------------------------------


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = _id()
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # planner | admin
    password_hash: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = _created()


class UserToken(Base):
    """A user's bearer token, stored only as a SHA-256 hash of the random token."""

    __tablename__ = "user_tokens"
    id: Mapped[str] = _id()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16), default="api")  # api | session | sign_in | flash
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Occasion(Base):
    __tablename__ = "occasions"
    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(String(200))
    starts_on: Mapped[date] = mapped_column(Date)
    #: The IANA zone pages show this occasion's times in (the API stays UTC).
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = _created()


class OccasionPlanner(Base):
    __tablename__ = "occasion_planners"
    occasion_id: Mapped[str] = mapped_column(ForeignKey("occasions.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index(None, "occasion_id", "id"),)
    id: Mapped[str] = _id()
    occasion_id: Mapped[str] = mapped_column(ForeignKey("occasions.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created()


class Guest(Base):
    __tablename__ = "guests"
    __table_args__ = (Index(None, "occasion_id", "id"),)
    id: Mapped[str] = _id()
    occasion_id: Mapped[str] = mapped_column(ForeignKey("occasions.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = _created()


# --- connections, principals, grants -----------------------------------------------------


class Connection(Base):
    __tablename__ = "connections"
    __table_args__ = (
        Index(None, "occasion_id", "id"),
        Index(None, "state", "health", "id"),
        Index(None, "integration_key", "id"),
        Index(None, "health", "id"),
        # the scheduler's query: enabled connections whose next sync is due
        Index(None, "state", "next_sync_at"),
    )
    id: Mapped[str] = _id()
    occasion_id: Mapped[str] = mapped_column(ForeignKey("occasions.id", ondelete="CASCADE"))
    integration_key: Mapped[str] = mapped_column(String(64))
    #: The planner's own name for the connection (optional; searched on the admin page).
    label: Mapped[str | None] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(16))  # draft | enabled | disabled | revoked
    health: Mapped[str] = mapped_column(String(16), default="unknown")
    health_reasons: Mapped[list[Any]] = mapped_column(default=list)
    #: Health as the last sync saw it (drift, failures); ``health`` adds validation drift on top.
    sync_health: Mapped[str] = mapped_column(String(16), default="unknown")
    sync_health_reasons: Mapped[list[Any]] = mapped_column(default=list)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scope_type: Mapped[str] = mapped_column(String(16))
    scope_event_id: Mapped[str | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    action_keys: Mapped[list[Any]] = mapped_column(default=list)
    sync_interval_seconds: Mapped[int | None] = mapped_column(Integer)
    next_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sync_status: Mapped[str | None] = mapped_column(String(16))
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Failed runs since the last success (migration 0005); the schedule pauses at a threshold.
    sync_failures_in_row: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: When the schedule paused after too many failed runs in a row (a manual sync resumes it).
    sync_paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The adapter's opaque state (its cursor) from the last successful run (migration 0006).
    sync_state: Mapped[Any | None] = mapped_column(JSONType)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Bumped by every write; writes are conditional on the version they read.
    version: Mapped[int] = mapped_column(Integer, default=1)
    #: Set while an admin has suspended every connection of this adapter (migration 0009).
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suspended_reason: Mapped[str | None] = mapped_column(String(500))


class ConnectionCount(Base):
    """The admin summary's counts of connections per (state, health), kept by database triggers.

    Migration 0011's triggers on ``connections`` append ``+1``/``-1`` rows on every insert,
    delete and change of ``state`` or ``health`` (append-only: no hot row to lock), whoever
    writes (ORM, raw SQL, bulk). The count of a pair is the sum of its rows; upkeep folds the
    rows into one per pair (``services.retention.counts``); ``services.connections.counts`` reads them.
    """

    __tablename__ = "connection_counts"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    state: Mapped[str] = mapped_column(String(16))
    health: Mapped[str] = mapped_column(String(16))
    n: Mapped[int] = mapped_column(Integer)


class ConnectionSecret(Base):
    """One encrypted secret field of a connection (AES-GCM, bound to connection and field)."""

    __tablename__ = "connection_secrets"
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    field_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    #: The contract's redacted summary, computed once when the value is written.
    redacted: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = _created()


class IntegrationPrincipal(Base):
    __tablename__ = "integration_principals"
    id: Mapped[str] = _id()
    subject_id: Mapped[str] = mapped_column(String(80), unique=True)  # integration:<connection_id>
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"), unique=True)
    scope_type: Mapped[str] = mapped_column(String(16))
    scope_occasion_id: Mapped[str | None] = mapped_column(String(40))
    scope_event_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = _created()
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IntegrationKey(Base):
    """An issued key ``tov_<key_id>_<secret>``; only the SHA-256 of the secret is kept."""

    __tablename__ = "integration_keys"
    __table_args__ = (Index(None, "principal_id", "revoked_at"),)
    id: Mapped[str] = _id()
    principal_id: Mapped[str] = mapped_column(ForeignKey("integration_principals.id", ondelete="CASCADE"))
    key_id: Mapped[str] = mapped_column(String(40), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The key's own callback signing secret (``whsec_…``, for adapters with Standard Webhooks
    #: callbacks): AES-GCM, bound to connection and key id; cleared when the key is revoked.
    callback_secret_key_id: Mapped[str | None] = mapped_column(String(64))
    callback_secret_nonce: Mapped[bytes | None] = mapped_column(LargeBinary(12))
    callback_secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)


class Grant(Base):
    """An explicit permission: ``subject_id`` may do ``action_key`` inside the scope."""

    __tablename__ = "grants"
    __table_args__ = (Index(None, "subject_id", "revoked_at"),)
    id: Mapped[str] = _id()
    subject_id: Mapped[str] = mapped_column(String(80))
    scope_type: Mapped[str] = mapped_column(String(16))
    scope_occasion_id: Mapped[str | None] = mapped_column(String(40))
    scope_event_id: Mapped[str | None] = mapped_column(String(40))
    action_key: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = _created()
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --- activity and records --------------------------------------------------------------------


class Activity(Base):
    __tablename__ = "activity"
    __table_args__ = (
        Index(None, "occasion_id", "id"),
        Index(None, "connection_id", "id"),
        Index(None, "kind", "id"),
    )
    id: Mapped[str] = _id()
    occurred_at: Mapped[datetime] = _created()
    occasion_id: Mapped[str | None] = mapped_column(String(40))
    connection_id: Mapped[str | None] = mapped_column(String(40))
    integration_key: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(80))
    summary: Mapped[str] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: Consecutive identical routine entries folded into this one (migration 0005).
    repeat_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class SyncedRecord(Base):
    __tablename__ = "synced_records"
    __table_args__ = (
        UniqueConstraint("connection_id", "kind", "external_id"),
        Index(None, "connection_id", "id"),
    )
    id: Mapped[str] = _id()
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the row was last written (the API's ``written_at``).
    updated_at: Mapped[datetime] = _created()
    #: The stored version's time: the partner's ``updated_at``, else when it was received (0006).
    version_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Set when the partner reported a deletion or a full run did not see the record (0006).
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When a full run last saw the record, written or not (its deletion check; 0006).
    seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CallbackDelivery(Base):
    """Remembers ``x-tov-delivery-id`` per connection so a repeat has no second effect."""

    __tablename__ = "callback_deliveries"
    #: Retention prunes by ``activity_id``: a time-ordered id made with the row (migration 0002).
    __table_args__ = (Index(None, "activity_id"),)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    delivery_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    activity_id: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = _created()


class CallbackRejection(Base):
    """How many callbacks of a connection were refused 401, by minute and reason (every one counts,
    unlike the rate-limited ``callback.rejected`` entries); rows older than an hour are pruned."""

    __tablename__ = "callback_rejections"
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    #: The start of the minute the rejections fell in.
    minute: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- background work ---------------------------------------------------------------------------


class SyncRun(Base):
    __tablename__ = "sync_runs"
    __table_args__ = (
        # at most one active (queued or running) run per connection
        Index(
            "uq_sync_runs_active_connection",
            "connection_id",
            unique=True,
            sqlite_where=text("state IN ('queued', 'running')"),
            postgresql_where=text("state IN ('queued', 'running')"),
        ),
        Index(None, "state", "next_attempt_at"),
        Index(None, "state", "lease_expires_at"),
        Index(None, "connection_id", "id"),
    )
    id: Mapped[str] = _id()
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))  # queued | running | succeeded | failed
    trigger: Mapped[str] = mapped_column(String(16))  # SyncTrigger: schedule | manual | full | event
    requested_by: Mapped[str] = mapped_column(String(80))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    records_written: Mapped[int] = mapped_column(Integer, default=0)
    #: Records the run marked deleted (migration 0005; the deletions work fills it).
    records_deleted: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: Why a queued run waits to retry, in words (migration 0005); cleared when it ends.
    retry_reason: Mapped[str | None] = mapped_column(Text)
    #: The ``x-request-id`` of the request that queued it (``tovplus.runtime.trace``; migration 0002).
    request_id: Mapped[str | None] = mapped_column(String(64))
    #: W3C traceparent of the span that queued it (only while tracing is on; runtime/tracing.py).
    traceparent: Mapped[str | None] = mapped_column(String(55))
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The last checkpoint: ``{"state", "upserted", "deleted", "kinds"}`` (migration 0006).
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "occasion_id", "id"),)
    id: Mapped[str] = _id()
    occasion_id: Mapped[str] = mapped_column(ForeignKey("occasions.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[Any]] = mapped_column(default=list)
    secret_key_id: Mapped[str] = mapped_column(String(64))
    secret_nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), default="active")  # active | disabled
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = _created()
    # migration 0009: the signing secret before the last rotation, valid until its expiry
    previous_secret_key_id: Mapped[str | None] = mapped_column(String(64))
    previous_secret_nonce: Mapped[bytes | None] = mapped_column(LargeBinary(12))
    previous_secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Who disabled it (``system`` for a 410 or failing too long, else the subject).
    disabled_by: Mapped[str | None] = mapped_column(String(80))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Notice(Base):
    """An in-app notice for the planners of an occasion ("Needs attention"), until cleared."""

    __tablename__ = "notices"
    __table_args__ = (Index(None, "occasion_id", "cleared_at", "id"),)
    id: Mapped[str] = _id()
    occasion_id: Mapped[str] = mapped_column(ForeignKey("occasions.id", ondelete="CASCADE"))
    connection_id: Mapped[str | None] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = _created()
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cleared_by: Mapped[str | None] = mapped_column(String(80))


class WebhookDelivery(Base):
    """One event for one endpoint; its ``id`` is the ``webhook-id`` kept across retries."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(None, "state", "next_attempt_at"),
        Index(None, "state", "lease_expires_at"),
        Index(None, "endpoint_id", "id"),
    )
    id: Mapped[str] = _id()
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16))  # pending | delivering | delivered | failed
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created()
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The request id of the work that caused it (``tovplus.runtime.trace``; migration 0002).
    request_id: Mapped[str | None] = mapped_column(String(64))
    #: W3C traceparent of the span that queued it (only while tracing is on; runtime/tracing.py).
    traceparent: Mapped[str | None] = mapped_column(String(55))


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"
    __table_args__ = (Index(None, "delivery_id", "id"),)
    id: Mapped[str] = _id()
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    attempted_at: Mapped[datetime] = _created()
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[float] = mapped_column(Float)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    response_excerpt: Mapped[str | None] = mapped_column(String(1000))
    error: Mapped[str | None] = mapped_column(String(500))


class Lease(Base):
    """A named lease (e.g. the scheduler's leadership) held until ``expires_at``."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(80))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- actions and platform events (migration 0008) ------------------------------------------------


class ActionRun(Base):
    """One run of an adapter action: queued → running → succeeded | failed, or back to queued.

    ``id`` is the ``Idempotency-Key`` every attempt sends. ``coalescing`` runs (queued by platform
    events) are at most one queued per (connection, action); a caller's ``idempotency_key`` is
    unique per connection.
    """

    __tablename__ = "action_runs"
    __table_args__ = (
        Index(
            "uq_action_runs_coalescing",
            "connection_id",
            "action_key",
            unique=True,
            sqlite_where=text("state = 'queued' AND coalescing = 1"),
            postgresql_where=text("state = 'queued' AND coalescing"),
        ),
        UniqueConstraint("connection_id", "idempotency_key"),
        Index(None, "state", "next_attempt_at"),
        Index(None, "state", "lease_expires_at"),
        Index(None, "connection_id", "id"),
    )
    id: Mapped[str] = _id()
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    action_key: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # ActionRunState
    #: ``user:<id>`` (or another subject) or ``event:<platform event type>``.
    trigger: Mapped[str] = mapped_column(String(120))
    coalescing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    input: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    summary: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PlatformEvent(Base):
    """The platform events outbox: written with the change it reports, dispatched once."""

    __tablename__ = "platform_events"
    __table_args__ = (Index(None, "dispatched_at", "id"),)
    id: Mapped[str] = _id()
    occasion_id: Mapped[str] = mapped_column(ForeignKey("occasions.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = _created()
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --- OAuth2 (services/oauth) ----------------------------------------------------------------


class OAuthClient(Base):
    """The operator's OAuth client of one ``oauth2`` adapter; the secret sealed like every secret
    (AAD ``oauth-client:<integration_key>``)."""

    __tablename__ = "oauth_clients"
    integration_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(500))
    secret_key_id: Mapped[str] = mapped_column(String(64))
    secret_nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    updated_by: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime] = _created()


class OAuthState(Base):
    """One authorization attempt: single-use, expiring, bound to a user and a connection.

    Only the state's SHA-256 is stored; the PKCE verifier is sealed (AAD ``oauth-state:<hash>``).
    """

    __tablename__ = "oauth_states"
    __table_args__ = (Index(None, "expires_at"),)
    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    connection_id: Mapped[str] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    verifier_key_id: Mapped[str | None] = mapped_column(String(64))
    verifier_nonce: Mapped[bytes | None] = mapped_column(LargeBinary(12))
    verifier_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    redirect_uri: Mapped[str] = mapped_column(String(2048))
    return_to: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OAuthGrant(Base):
    """An OAuth2 connection's grant: its tokens (sealed, AAD ``connection:<id>:oauth.<field>``)
    and the refresh lease that lets one process at a time refresh them.

    ``token_version`` goes up with every write of the tokens; ``lease_fence`` with every lease
    taken. A refresher writes only while ``lease_owner`` and ``lease_fence`` are still its own,
    so one whose lease expired cannot overwrite a newer token.
    """

    __tablename__ = "oauth_grants"
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(24))  # AuthorizationStatus
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    access_key_id: Mapped[str | None] = mapped_column(String(64))
    access_nonce: Mapped[bytes | None] = mapped_column(LargeBinary(12))
    access_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    refresh_key_id: Mapped[str | None] = mapped_column(String(64))
    refresh_nonce: Mapped[bytes | None] = mapped_column(LargeBinary(12))
    refresh_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_fence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    authorized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    authorized_by: Mapped[str | None] = mapped_column(String(80))
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = _created()
