"""The outbox: one pending delivery row per subscribed endpoint, in the caller's transaction.

The event exists exactly when the state change it reports was committed; the caller
dispatches the returned delivery ids after commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import WebhookDelivery, WebhookEndpoint
from tovplus.db.states import DeliveryState, EndpointState
from tovplus.db.types import utcnow
from tovplus.integrations.payloads import format_timestamp
from tovplus.integrations.redaction import redact_details
from tovplus.runtime import Runtime
from tovplus.services.webhooks.catalog import EVENT_TYPES


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    return str(value)


def _jsonable(value: Any) -> Any:
    """Plain JSON (timestamps as RFC 3339, anything else unknown as text), so the outbox row
    never breaks the caller's transaction."""
    return json.loads(json.dumps(value, default=_json_default))


#: A check every payload passes before it is written (the test suite installs a JSON Schema
#: validator here; see :func:`set_payload_check`). ``None`` in production.
_payload_check: Callable[[dict[str, Any]], None] | None = None


#: An occasion's active endpoints, built once (the sync engine emits events in every finish).
_ACTIVE_ENDPOINTS = (
    select(WebhookEndpoint.id, WebhookEndpoint.event_types)
    .where(
        WebhookEndpoint.occasion_id == bindparam("occasion_id"), WebhookEndpoint.state == EndpointState.ACTIVE
    )
    .order_by(WebhookEndpoint.id)
)
#: ``session.info`` key of the endpoints looked up in this transaction (:func:`endpoints_remembered`).
_REMEMBERED = "tovplus.webhooks.endpoints"


@contextmanager
def endpoints_remembered(session: Session) -> Iterator[None]:
    """Within the block, :func:`emit_event` looks each occasion's endpoints up once, not once per
    event: for a writer that emits many events in one transaction that changes no endpoint (the
    sync engine's batches: three events per first sync, so three look-ups a run before)."""
    session.info[_REMEMBERED] = {}
    try:
        yield
    finally:
        session.info.pop(_REMEMBERED, None)


def _endpoints(session: Session, occasion_id: str, endpoint_ids: Sequence[str] | None) -> list[Any]:
    """``(id, event_types)`` of the occasion's active endpoints (only ``endpoint_ids``, if given)."""
    if endpoint_ids is not None:
        query = _ACTIVE_ENDPOINTS.where(WebhookEndpoint.id.in_(list(endpoint_ids)))
        return list(session.execute(query, {"occasion_id": occasion_id}).all())
    remembered: dict[str, list[Any]] | None = session.info.get(_REMEMBERED)
    if remembered is not None and occasion_id in remembered:
        return remembered[occasion_id]
    rows = list(session.execute(_ACTIVE_ENDPOINTS, {"occasion_id": occasion_id}).all())
    if remembered is not None:
        remembered[occasion_id] = rows
    return rows


def set_payload_check(check: Callable[[dict[str, Any]], None] | None) -> None:
    """Install (or remove, with ``None``) a check every emitted payload must pass."""
    global _payload_check
    _payload_check = check


def emit_event(
    session: Session,
    *,
    occasion_id: str,
    event_type: str,
    data: dict[str, Any],
    endpoint_ids: Sequence[str] | None = None,
) -> list[str]:
    """Add one pending delivery per active endpoint of the occasion subscribed to ``event_type``
    (or, with ``endpoint_ids``, to exactly those active endpoints of the occasion).

    Runs in the caller's transaction; returns the delivery ids to dispatch after commit.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}; add it to webhooks/catalog.py")
    now = utcnow()
    payload = {
        "type": event_type,
        "id": new_id("wev"),
        "occurred_at": format_timestamp(now),
        "data": _jsonable(redact_details(dict(data))),
    }
    if _payload_check is not None:
        _payload_check(payload)
    endpoints = _endpoints(session, occasion_id, endpoint_ids)
    subscribed = [
        endpoint_id
        for endpoint_id, types in endpoints
        if endpoint_ids is not None or event_type in (types or [])
    ]
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


def dispatch_after_commit(session: Session, rt: Runtime, delivery_ids: list[str]) -> None:
    """Hand ``delivery_ids`` to the queue once the session's transaction commits (never before:
    a worker must find the rows). Without a commit nothing is dispatched."""
    if not delivery_ids:
        return
    ids = list(delivery_ids)

    def _dispatch(_session: Session) -> None:
        for delivery_id in ids:
            rt.dispatcher.webhook_delivery(delivery_id)

    event.listen(session, "after_commit", _dispatch, once=True)
