"""An endpoint's message log: every delivery with every attempt, resending one, recovering
every failed one since a time. A resent or recovered delivery keeps its ``webhook-id`` (and its
payload), so receivers that already processed it can tell."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from tovplus.db.models import WebhookAttempt, WebhookDelivery
from tovplus.db.sql import one_of
from tovplus.db.states import DeliveryState
from tovplus.db.types import utcnow
from tovplus.errors import Conflict, FieldIssue, InvalidInput, NotFound
from tovplus.integrations.payloads import format_timestamp
from tovplus.runtime import Runtime
from tovplus.runtime.pagination import Page, page_of, paginate
from tovplus.services import activity
from tovplus.services.auth import Caller, is_id
from tovplus.services.webhooks.operations import load_endpoint, require_active
from tovplus.services.webhooks.outbox import dispatch_after_commit
from tovplus.services.webhooks.views import LoggedDeliveryOut, logged_delivery_view

#: What ``?status=`` takes; ``pending`` includes deliveries with an attempt in flight.
STATUSES = ("pending", "delivered", "failed", "cancelled")
_AGAIN = {"state": DeliveryState.PENDING, "attempt": 0, "delivered_at": None}


def _status_states(status: str | None) -> tuple[str, ...] | None:
    if status is None:
        return None
    if status not in STATUSES:
        raise InvalidInput(
            "Unknown status.",
            fields=[FieldIssue("status", "invalid", f"status is one of {', '.join(STATUSES)}.")],
        )
    if status == "pending":
        return (DeliveryState.PENDING, DeliveryState.DELIVERING)
    return (status,)


def list_deliveries(
    rt: Runtime,
    caller: Caller,
    occasion_id: str,
    endpoint_id: str,
    *,
    status: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[LoggedDeliveryOut]:
    """The endpoint's deliveries, newest first, each with every attempt (oldest first)."""
    states = _status_states(status)
    with rt.db.read() as session:
        load_endpoint(session, caller, occasion_id, endpoint_id)
        query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        if states is not None:
            query = query.where(WebhookDelivery.state.in_(states))
        query, size = paginate(query, WebhookDelivery.id, limit=limit, cursor=cursor, newest_first=True)
        page = page_of(session.scalars(query).all(), size, lambda d: d.id)
        attempts: dict[str, list[WebhookAttempt]] = {d.id: [] for d in page.items}
        if attempts:
            for attempt in session.scalars(
                select(WebhookAttempt)
                .where(one_of(WebhookAttempt.delivery_id.expression, list(attempts)))
                .order_by(WebhookAttempt.id)
            ):
                attempts[attempt.delivery_id].append(attempt)
        return Page([logged_delivery_view(d, attempts[d.id]) for d in page.items], page.next_cursor)


def resend(rt: Runtime, caller: Caller, occasion_id: str, endpoint_id: str, webhook_id: str) -> None:
    """Send one delivery again (same ``webhook-id``, a fresh retry schedule). 409 while it is
    still pending or the endpoint is disabled."""
    with rt.db.write() as session:
        endpoint = load_endpoint(session, caller, occasion_id, endpoint_id)
        require_active(endpoint)
        delivery = session.get(WebhookDelivery, webhook_id) if is_id(webhook_id) else None
        if delivery is None or delivery.endpoint_id != endpoint.id:
            raise NotFound("No such delivery for this endpoint.")
        if delivery.state in (DeliveryState.PENDING, DeliveryState.DELIVERING):
            raise Conflict("This delivery is still pending; it will be sent on its schedule.")
        now = utcnow()
        delivery.state, delivery.attempt, delivery.delivered_at = DeliveryState.PENDING, 0, None
        delivery.next_attempt_at = now
        activity.record(
            session,
            kind="webhook.delivery_resent",
            actor=caller.subject_id,
            summary=f"Delivery {webhook_id} ({delivery.event_type}) to {endpoint.url} was queued again",
            occasion_id=occasion_id,
            details={"endpoint_id": endpoint.id, "webhook_id": webhook_id},
        )
        dispatch_after_commit(session, rt, [webhook_id])


def recover(rt: Runtime, caller: Caller, occasion_id: str, endpoint_id: str, since: datetime) -> int:
    """Queue again every failed delivery of the endpoint created at or after ``since`` (each with
    its own ``webhook-id``); delivered ones are left alone. Returns how many."""
    with rt.db.write() as session:
        endpoint = load_endpoint(session, caller, occasion_id, endpoint_id)
        require_active(endpoint)
        now = utcnow()
        ids = list(
            session.scalars(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.endpoint_id == endpoint.id,
                    WebhookDelivery.state == DeliveryState.FAILED,
                    WebhookDelivery.created_at >= since,
                )
                .values(next_attempt_at=now, **_AGAIN)
                .returning(WebhookDelivery.id)
                .execution_options(synchronize_session=False)
            )
        )
        activity.record(
            session,
            kind="webhook.recovered",
            actor=caller.subject_id,
            summary=(
                f"{len(ids)} failed deliveries to {endpoint.url} since {since:%Y-%m-%d %H:%M} UTC "
                "were queued again"
            ),
            occasion_id=occasion_id,
            details={"endpoint_id": endpoint.id, "since": format_timestamp(since), "queued": len(ids)},
        )
        dispatch_after_commit(session, rt, sorted(ids))
    return len(ids)
