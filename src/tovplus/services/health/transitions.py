"""Health transitions: the one place that announces a connection's health moved.

Every writer of ``connections.health`` (finishing or re-queueing a sync run, a PATCH, a
credential check) calls :func:`health_changed` in the same transaction as the write, with
the health before and after; it emits ``integration.health_changed`` when they differ.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from tovplus.services import webhooks

HEALTH_CHANGED_EVENT = "integration.health_changed"


def health_changed(
    session: Session,
    *,
    connection_id: str,
    integration_key: str,
    occasion_id: str,
    previous: str,
    health: str,
    reasons: Sequence[str],
) -> list[str]:
    """Emit ``integration.health_changed`` if ``health`` differs from ``previous``.

    Returns the outbox's delivery ids, to dispatch after the transaction commits.
    """
    if previous == health:
        return []
    return webhooks.emit_event(
        session,
        occasion_id=occasion_id,
        event_type=HEALTH_CHANGED_EVENT,
        data={
            "connection_id": connection_id,
            "integration_key": integration_key,
            "occasion_id": occasion_id,
            "health": health,
            "previous_health": previous,
            "health_reasons": [str(r) for r in reasons],
        },
    )
