"""The platform events dispatcher: pending events → the subscribed actions of enabled connections.

One pass (the scheduler's leader runs it every tick) claims every pending event and, in the same
transaction, queues one coalescing run per (connection, action) subscribed to any of them: an
enabled, not suspended connection of the event's occasion whose adapter has an action subscribed to that event
type and that holds every action key the action needs. A connection that already has a queued
coalescing run of that action gets none (the queued one reads the occasion's data when it runs,
so it carries every change made before it started): 300 guests in a burst, one export.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select

from tovplus.db.models import Connection
from tovplus.db.sql import one_of
from tovplus.db.states import ConnectionState
from tovplus.db.types import utcnow
from tovplus.db.write_lock import locked_write
from tovplus.runtime import Runtime
from tovplus.services import platform_events
from tovplus.services.actions.runs import missing_keys, queue_for_event
from tovplus.services.auth import active_action_keys, subject_for


def dispatch_platform_events(rt: Runtime, *, now: datetime | None = None) -> list[str]:
    """Claim the pending platform events and queue the subscribed actions; returns the new run ids."""
    now = now or utcnow()
    subscribed = {a.integration_key for a in rt.registry if a.event_subscriptions}
    with locked_write(rt.db) as session:
        events = platform_events.claim_pending(session, now=now)
        if not events or not subscribed:
            return []
        types_by_occasion: dict[str, set[str]] = defaultdict(set)
        for event in events:
            types_by_occasion[event.occasion_id].add(event.event_type)
        connections = session.scalars(
            select(Connection)
            .where(
                one_of(Connection.occasion_id.expression, sorted(types_by_occasion)),
                Connection.state == ConnectionState.ENABLED,
                Connection.suspended_at.is_(None),  # the adapter kill switch: nothing queued
                Connection.integration_key.in_(sorted(subscribed)),
            )
            .order_by(Connection.id)
        ).all()
        created: list[str] = []
        for row in connections:
            adapter = rt.registry.find(row.integration_key)
            if adapter is None:
                continue
            granted = active_action_keys(session, subject_for(row.id))
            happened = types_by_occasion[row.occasion_id]
            for spec in adapter.actions:
                causes = sorted(happened.intersection(spec.subscribes))
                if not causes or missing_keys(spec, granted):
                    continue  # not subscribed, or not allowed: no subscription without the keys
                run_id = queue_for_event(session, row, spec, causes[0])
                if run_id is not None:
                    created.append(run_id)
    return created


def subscriptions_of(
    rt: Runtime, integration_key: str, granted: frozenset[str]
) -> list[tuple[str, list[str]]]:
    """``(action key, event types)`` a connection with ``granted`` keys is subscribed to."""
    adapter = rt.registry.find(integration_key)
    if adapter is None:
        return []
    return [
        (s.key, list(s.subscribes)) for s in adapter.actions if s.subscribes and not missing_keys(s, granted)
    ]
