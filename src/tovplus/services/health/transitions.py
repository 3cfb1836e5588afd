"""Health transitions: the one place that announces a connection's health moved.

Every writer of ``connections.health`` (finishing or re-queueing a sync run, a PATCH, a
credential check) calls :func:`health_changed` in the same transaction as the write, with
the health before and after; it emits ``integration.health_changed`` when they differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.orm import Session

from tovplus.services import webhooks

HEALTH_CHANGED_EVENT = "integration.health_changed"


class ConnectionIdentity(Protocol):
    """What the event names of a connection (a row, or a row the sync statements returned)."""

    @property
    def id(self) -> str: ...
    @property
    def integration_key(self) -> str: ...
    @property
    def occasion_id(self) -> str: ...


def health_changed(
    session: Session, conn: ConnectionIdentity, *, previous: str, health: str, reasons: Sequence[str]
) -> list[str]:
    """Emit ``integration.health_changed`` if ``health`` differs from ``previous``.

    Returns the outbox's delivery ids, to dispatch after the transaction commits (callers
    that do not dispatch leave them to the leader's next tick).
    """
    if previous == health:
        return []
    return webhooks.emit_event(
        session,
        occasion_id=conn.occasion_id,
        event_type=HEALTH_CHANGED_EVENT,
        data={
            "connection_id": conn.id,
            "integration_key": conn.integration_key,
            "occasion_id": conn.occasion_id,
            "health": health,
            "previous_health": previous,
            "health_reasons": [str(r) for r in reasons],
        },
    )
