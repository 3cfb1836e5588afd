"""Delivering: claim a delivery under a lease, send it, record the attempt, decide what next.

Next is one of: delivered, retry later (same ``webhook-id``), failed, or the endpoint
disabled (a 410, a signing secret that does not decrypt with the key it names, or failing
without a single success for :data:`DISABLE_AFTER_FAILING_FOR`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tovplus.db.states import DeliveryState, EndpointState
from tovplus.db.types import utcnow
from tovplus.errors import TovPlusError
from tovplus.integrations.payloads import format_timestamp
from tovplus.runtime import Runtime, tracing
from tovplus.runtime.metrics import WEBHOOK_DELIVERIES
from tovplus.services import activity, credentials
from tovplus.services.webhooks.sending import Claim, Outcome, encode_body, send

log = logging.getLogger(__name__)

#: An endpoint failing without a single success for this long is disabled.
DISABLE_AFTER_FAILING_FOR = timedelta(days=5)
#: Why an endpoint whose signing secret does not decrypt is disabled (nothing can sign for it).
UNREADABLE_ENDPOINT_REASON = (
    "its signing secret cannot be read any more; add the endpoint again to get a new secret for the receiver."
)

#: What the activity entry of an auto-disabled endpoint tells its owner (and support) to do.
REPAIR_HINT = (
    "Fix the receiver, then enable the endpoint again (PATCH with enabled=true, or Enable on the "
    "integrations page) and recover what it missed (POST …/recover with since = when it began failing)."
)


def deliver(rt: Runtime, delivery_id: str, *, worker_id: str) -> None:
    """Claim, sign, send and record one delivery. Calling it again for the same id is harmless:
    only a pending-and-due delivery (or one whose lease expired) is claimed, by exactly one caller.
    Traced as ``webhook.deliver``, continuing the trace that queued the delivery."""
    with tracing.row_span("webhook.deliver", rt.db, WebhookDelivery, delivery_id, delivery_id=delivery_id):
        _deliver(rt, delivery_id, worker_id)


def _deliver(rt: Runtime, delivery_id: str, worker_id: str) -> None:
    claim = _claim(rt, delivery_id, worker_id)
    if claim is None:
        return
    outcome = send(rt, claim)
    label = _record(rt, claim, outcome, worker_id)
    log.info(
        "webhook delivery %s attempt %d to endpoint %s: %s (%s)",
        claim.delivery_id,
        claim.attempt,
        claim.endpoint_id,
        label,
        outcome.status_code if outcome.status_code is not None else outcome.error,
    )


def requeue_due_deliveries(rt: Runtime, now: datetime, *, limit: int = 1000) -> list[str]:
    """Ids of deliveries to dispatch again: pending and due, or delivering with an expired lease."""
    with rt.db.read() as session:
        pending = session.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.state == DeliveryState.PENDING, WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        ).all()
        stale = session.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.state == DeliveryState.DELIVERING, WebhookDelivery.lease_expires_at < now)
            .order_by(WebhookDelivery.lease_expires_at)
            .limit(limit)
        ).all()
    return list(dict.fromkeys([*pending, *stale]))[:limit]


def _claim(rt: Runtime, delivery_id: str, worker_id: str) -> Claim | None:
    """Take the delivery's lease (one conditional update) and read what sending it needs."""
    now = utcnow()
    with rt.db.write() as session:
        claimed = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                or_(
                    and_(
                        WebhookDelivery.state == DeliveryState.PENDING, WebhookDelivery.next_attempt_at <= now
                    ),
                    and_(
                        WebhookDelivery.state == DeliveryState.DELIVERING,
                        WebhookDelivery.lease_expires_at < now,
                    ),
                ),
            )
            .values(
                state=DeliveryState.DELIVERING,
                lease_owner=worker_id,
                lease_expires_at=now + timedelta(seconds=rt.settings.lease_seconds),
                attempt=WebhookDelivery.attempt + 1,
            )
            .returning(WebhookDelivery.endpoint_id, WebhookDelivery.attempt, WebhookDelivery.payload)
            .execution_options(synchronize_session=False)
        ).first()
        if claimed is None:
            return None
        endpoint_id, attempt, payload = claimed
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        if endpoint is None or endpoint.state != EndpointState.ACTIVE:
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id)
                .values(
                    state=DeliveryState.FAILED, lease_owner=None, lease_expires_at=None, next_attempt_at=None
                )
                .execution_options(synchronize_session=False)
            )
            WEBHOOK_DELIVERIES.labels(outcome="dropped").inc()
            log.info("webhook delivery %s dropped: endpoint is disabled", delivery_id)
            return None
        secret, problem, unsendable = _signing_secret(rt, endpoint)
        previous = _previous_secret(rt, endpoint, now) if secret is not None else None
        return Claim(
            delivery_id=delivery_id,
            attempt=attempt,
            endpoint_id=endpoint.id,
            occasion_id=endpoint.occasion_id,
            url=endpoint.url,
            body=encode_body(payload),
            signing_secret=secret,
            problem=problem,
            unsendable=unsendable,
            endpoint_failing=endpoint.failing_since is not None,
            previous_secrets=(previous,) if previous else (),
        )


def _previous_secret(rt: Runtime, endpoint: WebhookEndpoint, now: datetime) -> str | None:
    """The secret the last rotation replaced, while its overlap lasts (else ``None``)."""
    expires = endpoint.previous_secret_expires_at
    if expires is None or expires <= now:
        return None
    try:
        return credentials.open_previous_endpoint_secret(rt.keyring, endpoint)
    except TovPlusError as exc:  # the new secret still signs; receivers on the old one miss out
        log.error(
            "the previous signing secret of webhook endpoint %s cannot be decrypted: %s", endpoint.id, exc
        )
        return None


def _signing_secret(rt: Runtime, endpoint: WebhookEndpoint) -> tuple[str | None, str | None, bool]:
    """``(secret, problem, unsendable)``: the endpoint's secret, or why not and whether that is final.

    A secret sealed with a key this process lacks (another process holds a newer key) is retried on
    the schedule; one that does not open with the key it names never will, so it is final.
    """
    try:
        return credentials.open_endpoint_secret(rt.keyring, endpoint), None, False
    except TovPlusError as exc:
        log.error("the signing secret of webhook endpoint %s cannot be decrypted: %s", endpoint.id, exc)
        if endpoint.secret_key_id not in rt.keyring.key_ids:
            return (
                None,
                f"The signing secret could not be read: this process lacks its key ({exc.code}).",
                False,
            )
        return None, f"The signing secret could not be read ({exc.code}).", True


def _disable_endpoint(session: Session, endpoint: WebhookEndpoint, reason: str, now: datetime) -> bool:
    """Disable an active endpoint, fail its pending deliveries and say so in the activity log."""
    changed = session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.state == EndpointState.ACTIVE)
        .values(
            state=EndpointState.DISABLED, disabled_reason=reason[:500], disabled_by="system", disabled_at=now
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(changed, "rowcount", 0) != 1:
        return False
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.state == DeliveryState.PENDING)
        .values(state=DeliveryState.FAILED, next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )
    activity.record(
        session,
        kind="webhook.endpoint_disabled",
        actor="system",
        summary=f"Webhook endpoint {endpoint.url} was disabled: {reason} {REPAIR_HINT}",
        occasion_id=endpoint.occasion_id,
        details={
            "endpoint_id": endpoint.id,
            "url": endpoint.url,
            "reason": reason,
            "failing_since": format_timestamp(endpoint.failing_since) if endpoint.failing_since else None,
            "how_to_repair": REPAIR_HINT,
        },
    )
    log.warning("webhook endpoint %s disabled: %s", endpoint.id, reason)
    return True


def _next_state(rt: Runtime, claim: Claim, outcome: Outcome, now: datetime) -> tuple[str, dict[str, Any]]:
    """The outcome label and the delivery's new values after this attempt."""
    delays = rt.settings.webhook_retry_delays
    if outcome.succeeded:
        return "delivered", {"state": DeliveryState.DELIVERED, "delivered_at": now, "next_attempt_at": None}
    if outcome.status_code == 410:
        return "gone", {"state": DeliveryState.FAILED, "next_attempt_at": None}
    if claim.unsendable:  # no later attempt can do better
        return "failed", {"state": DeliveryState.FAILED, "next_attempt_at": None}
    if claim.attempt <= len(delays):
        wait = max(delays[claim.attempt - 1], outcome.retry_after or 0.0)
        return "retry_scheduled", {
            "state": DeliveryState.PENDING,
            "next_attempt_at": now + timedelta(seconds=wait),
        }
    return "failed", {"state": DeliveryState.FAILED, "next_attempt_at": None}


def _record(rt: Runtime, claim: Claim, outcome: Outcome, worker_id: str) -> str:
    """Store the attempt and move the delivery (and maybe the endpoint) on. Returns the outcome label."""
    now = utcnow()
    with rt.db.write() as session:
        session.execute(
            insert(WebhookAttempt).values(
                id=new_id("wha"),
                delivery_id=claim.delivery_id,
                attempted_at=now,
                status_code=outcome.status_code,
                duration_ms=outcome.duration_ms,
                succeeded=outcome.succeeded,
                response_excerpt=outcome.excerpt,
                error=outcome.error[:500] if outcome.error else None,
            )
        )
        label, values = _next_state(rt, claim, outcome, now)
        moved = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == claim.delivery_id,
                WebhookDelivery.state == DeliveryState.DELIVERING,
                WebhookDelivery.lease_owner == worker_id,
            )
            .values(lease_owner=None, lease_expires_at=None, **values)
            .execution_options(synchronize_session=False)
        )
        if getattr(moved, "rowcount", 0) != 1:
            # our lease ran out and another worker took the delivery over: it decides now
            WEBHOOK_DELIVERIES.labels(outcome="lease_lost").inc()
            return "lease_lost"
        label = _update_endpoint(session, claim, outcome, label, now)
    WEBHOOK_DELIVERIES.labels(outcome=label).inc()
    return label


def _update_endpoint(session: Session, claim: Claim, outcome: Outcome, label: str, now: datetime) -> str:
    """Mark the endpoint recovered, failing, or disabled after this attempt; returns the final label."""
    if outcome.succeeded:
        if claim.endpoint_failing:  # it recovered
            session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == claim.endpoint_id)
                .values(failing_since=None)
                .execution_options(synchronize_session=False)
            )
    elif (endpoint := session.get(WebhookEndpoint, claim.endpoint_id)) is not None:
        if claim.unsendable:
            _disable_endpoint(session, endpoint, UNREADABLE_ENDPOINT_REASON, now)
        elif outcome.status_code == 410:
            _disable_endpoint(session, endpoint, "the receiver answered 410 Gone.", now)
        elif endpoint.failing_since is None:
            endpoint.failing_since = now
        elif now - endpoint.failing_since >= DISABLE_AFTER_FAILING_FOR:
            days = (now - endpoint.failing_since).days
            reason = f"every delivery has failed for {days} days (last error: {outcome.error})"
            # disabling fails the endpoint's pending deliveries, this one included
            if _disable_endpoint(session, endpoint, reason, now) and label == "retry_scheduled":
                label = "failed"
    return label
