"""The adapter kill switch as other domains see it: is a connection suspended, and refusing work
for one that is. Suspending and resuming are admin operations (``services.support``); syncs,
actions and callbacks check here (or the ``suspended_at`` column in their own SQL)."""

from __future__ import annotations

from typing import Protocol

from tovplus.errors import IntegrationSuspended

#: How a suspension's reason begins in the connection's health reasons.
SUSPENDED_REASON_PREFIX = "Suspended by an administrator: "


class _Suspendable(Protocol):
    @property
    def suspended_at(self) -> object: ...


def is_suspended(connection: _Suspendable) -> bool:
    """Whether an admin has suspended this connection's adapter (no syncs, actions or callbacks)."""
    return connection.suspended_at is not None


def require_not_suspended(connection: _Suspendable) -> None:
    """409 ``integration_suspended`` for a suspended connection."""
    if is_suspended(connection):
        raise IntegrationSuspended(
            "An administrator has suspended this integration; nothing runs until it is resumed."
        )


def suspension_reason(reason: str) -> str:
    """The health reason a suspension shows."""
    return SUSPENDED_REASON_PREFIX + reason


class _SuspendedRow(_Suspendable, Protocol):
    @property
    def suspended_reason(self) -> str | None: ...


def with_suspension(connection: _SuspendedRow, health: str, reasons: list[str]) -> tuple[str, list[str]]:
    """The health shown for a connection: a suspended one is ``degraded`` (unless worse) with the
    suspension's reason first."""
    if not is_suspended(connection):
        return health, reasons
    shown = health if health == "failing" else "degraded"
    return shown, [suspension_reason(connection.suspended_reason or ""), *reasons]
