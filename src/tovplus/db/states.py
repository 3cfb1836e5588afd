"""The states our work rows move through, as enums.

Each is a ``StrEnum`` whose values are exactly what the ``state`` columns store, so a member
compares equal to the stored string and serialises as it in JSON.
"""

from __future__ import annotations

from enum import StrEnum


class ConnectionState(StrEnum):
    """A connection's lifecycle: draft → enabled ⇄ disabled, and any of them → revoked."""

    DRAFT = "draft"
    ENABLED = "enabled"
    DISABLED = "disabled"
    REVOKED = "revoked"


class SyncRunState(StrEnum):
    """A sync run: queued → running → succeeded | failed, or back to queued for a retry."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class SyncTrigger(StrEnum):
    """Why a sync run was queued; ``full`` asks the adapter for everything and detects deletions."""

    SCHEDULE = "schedule"
    MANUAL = "manual"
    FULL = "full"
    EVENT = "event"


class SyncRunShownState(StrEnum):
    """A run as the run history shows it: a queued run that already failed once waits to retry."""

    QUEUED = "queued"
    RUNNING = "running"
    RETRY_SCHEDULED = "retry_scheduled"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


#: A connection has at most one run in these states (a partial unique index).
ACTIVE_SYNC_STATES = (SyncRunState.QUEUED, SyncRunState.RUNNING)


class DeliveryState(StrEnum):
    """A webhook delivery: pending → delivering → delivered | failed, or back to pending;
    cancelled when its endpoint is deleted or disabled by its owner; a failed (or delivered)
    one goes back to pending when resent or recovered."""

    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


class EndpointState(StrEnum):
    """A webhook endpoint: active, or disabled (by its owner, a 410, or failing too long)."""

    ACTIVE = "active"
    DISABLED = "disabled"


class ActionRunState(StrEnum):
    """An action run: queued → running → succeeded | failed, or back to queued for a retry."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
