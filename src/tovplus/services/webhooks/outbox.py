"""The outbox: one pending delivery row per subscribed endpoint, in the caller's transaction.

The event exists exactly when the state change it reports was committed; the caller
dispatches the returned delivery ids after commit.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import WebhookDelivery, WebhookEndpoint
from tovplus.db.states import DeliveryState, EndpointState
from tovplus.db.types import utcnow
from tovplus.integrations.payloads import format_timestamp
from tovplus.integrations.redaction import redact_details

#: Every event type an endpoint may subscribe to (the one list; routes validate against it).
EVENT_TYPES: tuple[str, ...] = (
    "integration.sync_completed",
    "integration.sync_failed",
    "integration.health_changed",
    "integration.records_changed",
    "integration.action_completed",
    "integration.action_failed",
)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    return str(value)


def _jsonable(value: Any) -> Any:
    """Plain JSON (timestamps as RFC 3339, anything else unknown as text), so the outbox row
    never breaks the caller's transaction."""
    return json.loads(json.dumps(value, default=_json_default))


def emit_event(session: Session, *, occasion_id: str, event_type: str, data: dict[str, Any]) -> list[str]:
    """Add one pending delivery per active endpoint of the occasion subscribed to ``event_type``.

    Runs in the caller's transaction; returns the delivery ids to dispatch after commit.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}; add it to EVENT_TYPES")
    endpoints = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.event_types)
        .where(WebhookEndpoint.occasion_id == occasion_id, WebhookEndpoint.state == EndpointState.ACTIVE)
        .order_by(WebhookEndpoint.id)
    ).all()
    subscribed = [endpoint_id for endpoint_id, types in endpoints if event_type in (types or [])]
    if not subscribed:
        return []
    now = utcnow()
    payload = {
        "type": event_type,
        "id": new_id("wev"),
        "occurred_at": format_timestamp(now),
        "data": _jsonable(redact_details(dict(data))),
    }
    ids: list[str] = []
    for endpoint_id in subscribed:
        delivery = WebhookDelivery(
            id=new_id("msg"),
            endpoint_id=endpoint_id,
            event_type=event_type,
            payload=payload,
            state=DeliveryState.PENDING,
            attempt=0,
            next_attempt_at=now,
            created_at=now,
        )
        session.add(delivery)
        ids.append(delivery.id)
    return ids
