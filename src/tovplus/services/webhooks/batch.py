"""Delivering many at once: claim N deliveries in one transaction, send them, record N outcomes in one.

On SQLite's single writer most of a delivery's own cost was its two write transactions (claim,
then record); a batch shares them. Every guarantee of a single delivery holds per row: the claim
is one conditional ``UPDATE … RETURNING`` (pending and due, or a lease that ran out), each attempt
is stored exactly once with its status code, duration and error, and an outcome is written only
while this worker still holds that attempt's lease (a row taken over meanwhile comes back
``lease_lost`` and the new holder decides). Rows are locked in id order (``FOR UPDATE`` on
PostgreSQL), so two workers' batches cannot deadlock.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tovplus.db.states import DeliveryState, EndpointState
from tovplus.db.types import utcnow
from tovplus.db.write_lock import locked_write
from tovplus.runtime import Runtime, trace, tracing
from tovplus.runtime.metrics import WEBHOOK_DELIVERIES
from tovplus.services.webhooks import delivery as single
from tovplus.services.webhooks.sending import Claim, Outcome, encode_body, send

log = logging.getLogger(__name__)

_D = WebhookDelivery

#: How many deliveries one claim (and one outcome transaction) takes at most.
BATCH_SIZE = 100


@dataclass(frozen=True, slots=True)
class Delivered:
    """What one delivery of a batch came to: its id and the outcome label (``delivered``,
    ``retry_scheduled``, ``failed``, ``gone``, ``lease_lost``)."""

    delivery_id: str
    label: str


def deliver(rt: Runtime, delivery_id: str, *, worker_id: str) -> None:
    """Claim, sign, send and record one delivery. Calling it again for the same id is harmless:
    only a pending-and-due delivery (or one whose lease expired) is claimed, by exactly one caller.
    Traced as :func:`deliver_many` traces each delivery."""
    deliver_many(rt, [delivery_id], worker_id=worker_id)


def deliver_many(
    rt: Runtime, delivery_ids: Sequence[str], *, worker_id: str, concurrency: int = 1
) -> list[Delivered]:
    """Claim, send and record ``delivery_ids``, :data:`BATCH_SIZE` at a time; ``concurrency``
    threads send each batch. Ids not due (or already taken) are skipped, as :func:`deliver` does."""
    results: list[Delivered] = []
    pool = ThreadPoolExecutor(concurrency, "webhook-send") if concurrency > 1 else None
    try:
        for start in range(0, len(delivery_ids), BATCH_SIZE):
            claims = claim_deliveries(rt, delivery_ids[start : start + BATCH_SIZE], worker_id)
            if not claims:
                continue
            if pool is None:
                outcomes = [_send_traced(rt, claim) for claim in claims]
            else:
                outcomes = list(pool.map(lambda c: _send_traced(rt, c), claims))
            labels = record_outcomes(rt, list(zip(claims, outcomes, strict=True)), worker_id)
            for claim, outcome, label in zip(claims, outcomes, labels, strict=True):
                with trace.bound(_request_id(claim)):
                    _log(claim, outcome, label)
                results.append(Delivered(claim.delivery_id, label))
    finally:
        if pool is not None:
            pool.shutdown()
    return results


def _request_id(claim: Claim) -> str:
    """The id a delivery's send and log lines carry: its queuer's, else its own (as
    :func:`tovplus.runtime.trace.bound_to_row` binds for a one-delivery task)."""
    return claim.request_id or claim.delivery_id


def _send_traced(rt: Runtime, claim: Claim) -> Outcome:
    """:func:`send` under the delivery's own request id, in a ``webhook.deliver`` span that
    continues the trace that queued the delivery (no-ops when tracing is off)."""
    with (
        trace.bound(_request_id(claim)),
        tracing.span("webhook.deliver", parent=claim.traceparent, delivery_id=claim.delivery_id),
    ):
        return send(rt, claim)


def _log(claim: Claim, outcome: Outcome, label: str) -> None:
    log.info(
        "webhook delivery %s attempt %d to endpoint %s: %s (%s)",
        claim.delivery_id,
        claim.attempt,
        claim.endpoint_id,
        label,
        outcome.status_code if outcome.status_code is not None else outcome.error,
    )


def _claimable(now: datetime) -> Any:
    """Pending and due, or delivering under a lease that ran out."""
    return or_(
        and_(WebhookDelivery.state == DeliveryState.PENDING, WebhookDelivery.next_attempt_at <= now),
        and_(WebhookDelivery.state == DeliveryState.DELIVERING, WebhookDelivery.lease_expires_at < now),
    )


def claim_deliveries(rt: Runtime, delivery_ids: Sequence[str], worker_id: str) -> list[Claim]:
    """Take the lease of every claimable delivery of ``delivery_ids`` in one transaction; the
    claims come in the order given (an id given twice is claimed once). A delivery whose endpoint
    is no longer active is failed (``dropped``) instead."""
    ids = list(dict.fromkeys(delivery_ids))
    if not ids:
        return []
    now = utcnow()
    with locked_write(rt.db) as session:
        locked = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.id.in_(ids), _claimable(now))
            .order_by(WebhookDelivery.id)
            .with_for_update()
        )
        rows = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(locked.scalar_subquery()), _claimable(now))
            .values(
                state=DeliveryState.DELIVERING,
                lease_owner=worker_id,
                lease_expires_at=now + timedelta(seconds=rt.settings.lease_seconds),
                attempt=WebhookDelivery.attempt + 1,
            )
            .returning(_D.id, _D.endpoint_id, _D.attempt, _D.payload, _D.request_id, _D.traceparent)
            .execution_options(synchronize_session=False)
        ).all()
        if not rows:
            return []
        endpoints = {
            e.id: e
            for e in session.scalars(
                select(WebhookEndpoint).where(WebhookEndpoint.id.in_({row[1] for row in rows}))
            )
        }
        claims = _claims_for(rt, session, rows, endpoints, now)
    order = {delivery_id: index for index, delivery_id in enumerate(ids)}
    return sorted(claims, key=lambda c: order[c.delivery_id])


def _claims_for(
    rt: Runtime,
    session: Session,
    rows: Sequence[Any],
    endpoints: dict[str, WebhookEndpoint],
    now: datetime,
) -> list[Claim]:
    """The claims of the rows just leased (each endpoint's secrets opened once); rows of an
    endpoint gone or disabled are failed in the same transaction."""
    secrets: dict[str, tuple[str | None, str | None, bool, str | None]] = {}
    claims: list[Claim] = []
    dropped: list[str] = []
    for delivery_id, endpoint_id, attempt, payload, request_id, traceparent in rows:
        endpoint = endpoints.get(endpoint_id)
        if endpoint is None or endpoint.state != EndpointState.ACTIVE:
            dropped.append(delivery_id)
            continue
        if endpoint.id not in secrets:
            secret, problem, unsendable = single.signing_secret(rt, endpoint)
            previous = single.previous_secret(rt, endpoint, now) if secret is not None else None
            secrets[endpoint.id] = (secret, problem, unsendable, previous)
        secret, problem, unsendable, previous = secrets[endpoint.id]
        claims.append(
            Claim(
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
                request_id=request_id,
                traceparent=traceparent,
            )
        )
    if dropped:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(dropped))
            .values(state=DeliveryState.FAILED, lease_owner=None, lease_expires_at=None, next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )
        WEBHOOK_DELIVERIES.labels(outcome="dropped").inc(len(dropped))
        log.info("webhook deliveries %s dropped: endpoint is disabled", ", ".join(dropped))
    return claims


def record_outcomes(rt: Runtime, attempts: Sequence[tuple[Claim, Outcome]], worker_id: str) -> list[str]:
    """Store every attempt and move each delivery (and its endpoint) on, in one transaction.
    Returns one label per attempt, in the order given; ``lease_lost`` for a delivery another
    worker took over meanwhile (its attempt is still stored, its row is left to the new holder)."""
    if not attempts:
        return []
    now = utcnow()
    with locked_write(rt.db) as session:
        session.execute(insert(WebhookAttempt), [_attempt_row(c, o, now) for c, o in attempts])
        held = _still_held(session, [c for c, _ in attempts], worker_id)
        labels: list[str] = []
        delivered: list[str] = []
        delivered_values: dict[str, Any] = {}
        for claim, outcome in attempts:
            if claim.delivery_id not in held:
                labels.append("lease_lost")
                continue
            label, values = single.next_state(rt, claim, outcome, now)
            labels.append(label)
            if label == "delivered":  # the same values for every one: one statement
                delivered.append(claim.delivery_id)
                delivered_values = values
            else:
                _move(session, [claim.delivery_id], values)
        if delivered:
            _move(session, delivered, delivered_values)
        labels = _update_endpoints(session, attempts, labels, now)
    for label in labels:
        WEBHOOK_DELIVERIES.labels(outcome=label).inc()
    return labels


def _attempt_row(claim: Claim, outcome: Outcome, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id("wha"),
        "delivery_id": claim.delivery_id,
        "attempted_at": now,
        "status_code": outcome.status_code,
        "duration_ms": outcome.duration_ms,
        "succeeded": outcome.succeeded,
        "response_excerpt": outcome.excerpt,
        "error": outcome.error[:500] if outcome.error else None,
    }


def _still_held(session: Session, claims: Sequence[Claim], worker_id: str) -> set[str]:
    """Ids of the claimed deliveries whose lease this worker still holds for that very attempt
    (locked until the transaction ends, in id order)."""
    attempt_of = {c.delivery_id: c.attempt for c in claims}
    rows = session.execute(
        select(WebhookDelivery.id, WebhookDelivery.attempt)
        .where(
            WebhookDelivery.id.in_(list(attempt_of)),
            WebhookDelivery.state == DeliveryState.DELIVERING,
            WebhookDelivery.lease_owner == worker_id,
        )
        .order_by(WebhookDelivery.id)
        .with_for_update()
    ).all()
    return {delivery_id for delivery_id, attempt in rows if attempt_of[delivery_id] == attempt}


def _move(session: Session, delivery_ids: list[str], values: dict[str, Any]) -> None:
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(delivery_ids))
        .values(lease_owner=None, lease_expires_at=None, **values)
        .execution_options(synchronize_session=False)
    )


def _update_endpoints(
    session: Session, attempts: Sequence[tuple[Claim, Outcome]], labels: list[str], now: datetime
) -> list[str]:
    """Failures first (the endpoint failing since now, or disabled), then recoveries: an endpoint
    with a success in the batch is no longer failing. A delivery whose endpoint this batch
    disabled was failed with it, so its label becomes ``failed``."""
    succeeded: set[str] = set()
    failing: set[str] = set()
    disabled: set[str] = set()
    for index, (claim, outcome) in enumerate(attempts):
        if labels[index] == "lease_lost":
            continue
        if outcome.succeeded:
            succeeded.add(claim.endpoint_id)
            if claim.endpoint_failing:
                failing.add(claim.endpoint_id)
        elif claim.endpoint_id not in disabled:
            failing.add(claim.endpoint_id)
            if single.mark_endpoint_failed(session, claim, outcome, now):
                disabled.add(claim.endpoint_id)
    for index, (claim, _) in enumerate(attempts):
        if claim.endpoint_id in disabled and labels[index] == "retry_scheduled":
            labels[index] = "failed"
    recovered = sorted((succeeded & failing) - disabled)
    if recovered:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_(recovered))
            .values(failing_since=None)
            .execution_options(synchronize_session=False)
        )
    return labels
