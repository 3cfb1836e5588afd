"""The rules of delivering: which deliveries are due, what an attempt leads to, what it does
to the endpoint (the claim, the send and the record live in :mod:`.batch`).

Next is one of: delivered, retry later (same ``webhook-id``), failed, or the endpoint
disabled (a 410, a signing secret that does not decrypt with the key it names, or failing
without a single success for :data:`DISABLE_AFTER_FAILING_FOR`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tovplus.db.models import WebhookDelivery, WebhookEndpoint
from tovplus.db.states import DeliveryState, EndpointState
from tovplus.errors import TovPlusError
from tovplus.integrations.payloads import format_timestamp
from tovplus.runtime import Runtime
from tovplus.services import activity, credentials
from tovplus.services.webhooks.sending import Claim, Outcome

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


def previous_secret(rt: Runtime, endpoint: WebhookEndpoint, now: datetime) -> str | None:
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


def signing_secret(rt: Runtime, endpoint: WebhookEndpoint) -> tuple[str | None, str | None, bool]:
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


def disable_endpoint(session: Session, endpoint: WebhookEndpoint, reason: str, now: datetime) -> bool:
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


def next_state(rt: Runtime, claim: Claim, outcome: Outcome, now: datetime) -> tuple[str, dict[str, Any]]:
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


def mark_endpoint_failed(session: Session, claim: Claim, outcome: Outcome, now: datetime) -> bool:
    """After a failed attempt: mark the endpoint failing, or disable it (a 410, an unreadable
    secret, failing for :data:`DISABLE_AFTER_FAILING_FOR`). True when this disabled it (which
    fails its pending deliveries, the ones just scheduled for a retry included)."""
    endpoint = session.get(WebhookEndpoint, claim.endpoint_id)
    if endpoint is None or endpoint.state != EndpointState.ACTIVE:
        return False
    if claim.unsendable:
        return disable_endpoint(session, endpoint, UNREADABLE_ENDPOINT_REASON, now)
    if outcome.status_code == 410:
        return disable_endpoint(session, endpoint, "the receiver answered 410 Gone.", now)
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    elif now - endpoint.failing_since >= DISABLE_AFTER_FAILING_FOR:
        days = (now - endpoint.failing_since).days
        reason = f"every delivery has failed for {days} days (last error: {outcome.error})"
        return disable_endpoint(session, endpoint, reason, now)
    return False
