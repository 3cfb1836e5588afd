"""The platform events outbox: what happened to the platform's own objects (a guest added).

:func:`emit` writes one ``platform_events`` row in the caller's transaction, so an event exists
exactly when the change it reports was committed. The actions domain's dispatcher claims the
pending rows (:func:`claim_pending`) and queues the subscribed actions. A new event type is one
entry in :data:`tovplus.integrations.actions.PLATFORM_EVENTS` and one :func:`emit` call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import PlatformEvent
from tovplus.db.sql import one_of
from tovplus.db.types import utcnow
from tovplus.integrations.actions import PLATFORM_EVENTS

#: Events claimed per dispatcher pass at most (the rest wait for the next pass).
CLAIM_LIMIT = 5000


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """A claimed event: its type and where it happened."""

    id: str
    occasion_id: str
    event_type: str
    subject_id: str | None


def emit(session: Session, *, occasion_id: str, event_type: str, subject_id: str | None) -> str:
    """Add a platform event to the caller's transaction; returns its id."""
    if event_type not in PLATFORM_EVENTS:
        raise ValueError(f"unknown platform event {event_type!r}; declare it in PLATFORM_EVENTS")
    event = PlatformEvent(
        id=new_id("pev"),
        occasion_id=occasion_id,
        event_type=event_type,
        subject_id=subject_id,
        occurred_at=utcnow(),
    )
    session.add(event)
    return event.id


def claim_pending(
    session: Session, *, now: datetime | None = None, limit: int = CLAIM_LIMIT
) -> list[PendingEvent]:
    """Mark up to ``limit`` undispatched events dispatched (conditionally) and return them, oldest first.

    Runs in the caller's transaction, so the actions it queues commit with the claim: an event is
    dispatched exactly once even with two dispatchers at the same time.
    """
    now = now or utcnow()
    rows = session.execute(
        select(
            PlatformEvent.id, PlatformEvent.occasion_id, PlatformEvent.event_type, PlatformEvent.subject_id
        )
        .where(PlatformEvent.dispatched_at.is_(None))
        .order_by(PlatformEvent.id)
        .limit(limit)
    ).all()
    if not rows:
        return []
    claimed = set(
        session.scalars(
            update(PlatformEvent)
            .where(
                one_of(PlatformEvent.id.expression, [r.id for r in rows]),
                PlatformEvent.dispatched_at.is_(None),
            )
            .values(dispatched_at=now)
            .returning(PlatformEvent.id)
            .execution_options(synchronize_session=False)
        )
    )
    return [PendingEvent(r.id, r.occasion_id, r.event_type, r.subject_id) for r in rows if r.id in claimed]
