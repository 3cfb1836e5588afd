"""Outbound webhooks: endpoints, the outbox of deliveries, and sending them signed.

* :func:`emit_event` writes one delivery row per subscribed endpoint inside the
  caller's transaction (an outbox: the event exists exactly when the state change
  it reports was committed). The caller dispatches the returned ids after commit.
* :func:`deliver` claims one delivery with a conditional update and a lease, signs
  it the Standard Webhooks way, POSTs it, records the attempt and decides what
  next: delivered, retry later (same ``webhook-id``), failed, or endpoint disabled.
* :func:`requeue_due_deliveries` lists what the reaper should dispatch again.

Signing (https://www.standardwebhooks.com): headers ``webhook-id`` (the delivery id,
kept across retries), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, keyed with the base64-decoded
part of the endpoint's ``whsec_…`` signing secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tovplus.db.sql import one_of
from tovplus.db.types import utcnow
from tovplus.errors import FieldIssue, Forbidden, InvalidInput, TovPlusError
from tovplus.integrations.http import ClientCache, outbound_client
from tovplus.integrations.payloads import format_timestamp
from tovplus.integrations.redaction import redact_details, scrubber
from tovplus.integrations.urls import check_url
from tovplus.runtime import Runtime
from tovplus.runtime.metrics import WEBHOOK_DELIVERIES
from tovplus.runtime.pagination import Page, page_of, paginate
from tovplus.services import activity, credentials
from tovplus.services.auth import MANAGE, Caller, authorize

log = logging.getLogger(__name__)

#: Every event type an endpoint may subscribe to (the one list; routes validate against it).
EVENT_TYPES: tuple[str, ...] = (
    "integration.sync_completed",
    "integration.sync_failed",
)
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
#: An endpoint failing without a single success for this long is disabled.
DISABLE_AFTER_FAILING_FOR = timedelta(days=5)
#: A ``Retry-After`` longer than this is capped.
MAX_RETRY_AFTER = timedelta(hours=24)
#: How many recent deliveries (newest first) the endpoint listing shows per endpoint.
RECENT_DELIVERIES = 10
EXCERPT_CHARS = 1000
_READ_LIMIT_BYTES = 8192
CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 10.0
USER_AGENT = "TOVPlus-Webhooks/1"


# --- signing ---------------------------------------------------------------------------------


def new_signing_secret() -> str:
    """A fresh ``whsec_<base64 of 32 random bytes>`` signing secret."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signing_key(signing_secret: str) -> bytes:
    """The HMAC key: the base64-decoded part after ``whsec_`` (as Standard Webhooks does)."""
    encoded = signing_secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


def sign(signing_secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one request."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(signing_secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed); key order is fixed so every retry sends the same body."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


# --- the outbox --------------------------------------------------------------------------------


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
        .where(WebhookEndpoint.occasion_id == occasion_id, WebhookEndpoint.state == "active")
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
            state="pending",
            attempt=0,
            next_attempt_at=now,
            created_at=now,
        )
        session.add(delivery)
        ids.append(delivery.id)
    return ids


def requeue_due_deliveries(rt: Runtime, now: datetime, *, limit: int = 1000) -> list[str]:
    """Ids of deliveries to dispatch again: pending and due, or delivering with an expired lease."""
    with rt.db.read() as session:
        pending = session.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        ).all()
        stale = session.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.state == "delivering", WebhookDelivery.lease_expires_at < now)
            .order_by(WebhookDelivery.lease_expires_at)
            .limit(limit)
        ).all()
    return list(dict.fromkeys([*pending, *stale]))[:limit]


# --- sending -------------------------------------------------------------------------------------


_clients = ClientCache()


def http_client(*, allow_private: bool) -> httpx.Client:
    """The process's webhook HTTP client (connection reuse; no proxies from the environment;
    no redirects; non-public addresses refused at connect time unless ``allow_private``)."""
    return _clients.get(
        allow_private,
        lambda: outbound_client(
            allow_private=allow_private,
            timeout=httpx.Timeout(REQUEST_TIMEOUT, connect=CONNECT_TIMEOUT),
            pool_size=100,
            user_agent=USER_AGENT,
        ),
    )


def close_http_clients() -> None:
    _clients.close()


@dataclass(frozen=True, slots=True)
class _Claim:
    delivery_id: str
    attempt: int
    endpoint_id: str
    occasion_id: str
    url: str
    body: bytes
    signing_secret: str | None
    problem: str | None  # set when the delivery cannot be sent at all (e.g. undecryptable secret)
    endpoint_failing: bool


@dataclass(frozen=True, slots=True)
class _Outcome:
    status_code: int | None
    duration_ms: float
    excerpt: str | None
    error: str | None
    retry_after: float | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _claim(rt: Runtime, delivery_id: str, worker_id: str) -> _Claim | None:
    now = utcnow()
    with rt.db.write() as session:
        claimed = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                or_(
                    and_(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now),
                    and_(WebhookDelivery.state == "delivering", WebhookDelivery.lease_expires_at < now),
                ),
            )
            .values(
                state="delivering",
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
        if endpoint is None or endpoint.state != "active":
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id)
                .values(state="failed", lease_owner=None, lease_expires_at=None, next_attempt_at=None)
                .execution_options(synchronize_session=False)
            )
            WEBHOOK_DELIVERIES.labels(outcome="dropped").inc()
            log.info("webhook delivery %s dropped: endpoint is disabled", delivery_id)
            return None
        secret: str | None = None
        problem: str | None = None
        try:
            secret = credentials.open_endpoint_secret(rt.keyring, endpoint)
        except TovPlusError as exc:
            problem = f"The signing secret could not be read ({exc.code})."
        return _Claim(
            delivery_id=delivery_id,
            attempt=attempt,
            endpoint_id=endpoint.id,
            occasion_id=endpoint.occasion_id,
            url=endpoint.url,
            body=encode_body(payload),
            signing_secret=secret,
            problem=problem,
            endpoint_failing=endpoint.failing_since is not None,
        )


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    seconds: float | None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - now).total_seconds()
    return max(0.0, min(seconds, MAX_RETRY_AFTER.total_seconds()))


def _send(rt: Runtime, claim: _Claim) -> _Outcome:
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 3)

    if claim.problem is not None or claim.signing_secret is None:
        return _Outcome(None, 0.0, None, claim.problem or "No signing secret.", None)
    allow_private = rt.settings.allow_private_urls
    why_not = check_url(claim.url, allow_private=allow_private)
    if why_not is not None:
        return _Outcome(None, 0.0, None, f"Refused: {why_not}", None)
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": claim.delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(claim.signing_secret, claim.delivery_id, timestamp, claim.body),
    }
    client = http_client(allow_private=allow_private)
    # each network operation waits at most this long, and reading the answer stops at the same
    # deadline, so an attempt ends well inside the lease (a slow receiver cannot hold it forever)
    budget = min(REQUEST_TIMEOUT, rt.settings.lease_seconds / 4)
    timeout = httpx.Timeout(budget, connect=min(CONNECT_TIMEOUT, budget))
    try:
        with client.stream(
            "POST", claim.url, content=claim.body, headers=headers, timeout=timeout
        ) as response:
            raw = b""
            for chunk in response.iter_raw():
                raw += chunk
                if len(raw) >= _READ_LIMIT_BYTES or time.perf_counter() - started > budget:
                    break
            excerpt = scrubber.scrub(raw.decode("utf-8", errors="replace"))[:EXCERPT_CHARS] or None
            retry_after = parse_retry_after(response.headers.get("retry-after"), utcnow())
            code = response.status_code
    except Forbidden as exc:
        return _Outcome(None, elapsed(), None, f"Refused: {exc.message}", None)
    except httpx.TimeoutException:
        return _Outcome(None, elapsed(), None, "The endpoint did not answer in time.", None)
    except httpx.HTTPError as exc:
        return _Outcome(None, elapsed(), None, f"Could not reach the endpoint ({type(exc).__name__}).", None)
    error = None if 200 <= code < 300 else f"The endpoint answered HTTP {code}."
    return _Outcome(code, elapsed(), excerpt, error, retry_after)


def _disable_endpoint(session: Session, endpoint: WebhookEndpoint, reason: str, now: datetime) -> bool:
    """Disable an active endpoint, fail its pending deliveries and say so in the activity log."""
    changed = session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.state == "active")
        .values(state="disabled", disabled_reason=reason[:500])
        .execution_options(synchronize_session=False)
    )
    if getattr(changed, "rowcount", 0) != 1:
        return False
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.state == "pending")
        .values(state="failed", next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )
    activity.record(
        session,
        kind="webhook.endpoint_disabled",
        actor="system",
        summary=f"Webhook endpoint {endpoint.url} was disabled: {reason}",
        occasion_id=endpoint.occasion_id,
        details={"endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason},
    )
    log.warning("webhook endpoint %s disabled: %s", endpoint.id, reason)
    return True


def _record(rt: Runtime, claim: _Claim, outcome: _Outcome, worker_id: str) -> str:
    """Store the attempt and move the delivery (and maybe the endpoint) on. Returns the outcome label."""
    now = utcnow()
    delays = rt.settings.webhook_retry_delays
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
        owned = (
            WebhookDelivery.id == claim.delivery_id,
            WebhookDelivery.state == "delivering",
            WebhookDelivery.lease_owner == worker_id,
        )
        if outcome.succeeded:
            label = "delivered"
            values: dict[str, Any] = {"state": "delivered", "delivered_at": now, "next_attempt_at": None}
        elif outcome.status_code == 410:
            label = "gone"
            values = {"state": "failed", "next_attempt_at": None}
        elif claim.attempt <= len(delays):
            label = "retry_scheduled"
            wait = max(delays[claim.attempt - 1], outcome.retry_after or 0.0)
            values = {"state": "pending", "next_attempt_at": now + timedelta(seconds=wait)}
        else:
            label = "failed"
            values = {"state": "failed", "next_attempt_at": None}
        moved = session.execute(
            update(WebhookDelivery)
            .where(*owned)
            .values(lease_owner=None, lease_expires_at=None, **values)
            .execution_options(synchronize_session=False)
        )
        if getattr(moved, "rowcount", 0) != 1:
            # our lease ran out and another worker took the delivery over: it decides now
            WEBHOOK_DELIVERIES.labels(outcome="lease_lost").inc()
            return "lease_lost"
        if outcome.succeeded:
            if claim.endpoint_failing:  # it recovered
                session.execute(
                    update(WebhookEndpoint)
                    .where(WebhookEndpoint.id == claim.endpoint_id)
                    .values(failing_since=None)
                    .execution_options(synchronize_session=False)
                )
        elif (endpoint := session.get(WebhookEndpoint, claim.endpoint_id)) is not None:
            if outcome.status_code == 410:
                _disable_endpoint(session, endpoint, "the receiver answered 410 Gone.", now)
            elif endpoint.failing_since is None:
                endpoint.failing_since = now
            elif now - endpoint.failing_since >= DISABLE_AFTER_FAILING_FOR:
                days = (now - endpoint.failing_since).days
                reason = f"every delivery has failed for {days} days (last error: {outcome.error})"
                # disabling fails the endpoint's pending deliveries, this one included
                if _disable_endpoint(session, endpoint, reason, now) and label == "retry_scheduled":
                    label = "failed"
    WEBHOOK_DELIVERIES.labels(outcome=label).inc()
    return label


def deliver(rt: Runtime, delivery_id: str, *, worker_id: str) -> None:
    """Claim, sign, send and record one delivery. Calling it again for the same id is harmless:
    only a pending-and-due delivery (or one whose lease expired) is claimed, by exactly one caller."""
    claim = _claim(rt, delivery_id, worker_id)
    if claim is None:
        return
    outcome = _send(rt, claim)
    label = _record(rt, claim, outcome, worker_id)
    log.info(
        "webhook delivery %s attempt %d to endpoint %s: %s (%s)",
        claim.delivery_id,
        claim.attempt,
        claim.endpoint_id,
        label,
        outcome.status_code if outcome.status_code is not None else outcome.error,
    )


# --- endpoints (the planner's routes) ----------------------------------------------------------


def endpoint_as_dict(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """The outward view of an endpoint: never the signing secret, not even redacted."""
    return {
        "id": endpoint.id,
        "occasion_id": endpoint.occasion_id,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types or []),
        "state": endpoint.state,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": format_timestamp(endpoint.failing_since) if endpoint.failing_since else None,
        "created_by": endpoint.created_by,
        "created_at": format_timestamp(endpoint.created_at),
    }


def _check_endpoint_input(url: str, event_types: list[str], *, allow_private: bool) -> list[str]:
    issues: list[FieldIssue] = []
    why_not = check_url(url, allow_private=allow_private)
    if why_not is not None:
        issues.append(FieldIssue("url", "invalid_url", why_not))
    for i, event_type in enumerate(event_types):
        if event_type not in EVENT_TYPES:
            issues.append(
                FieldIssue(
                    f"event_types.{i}",
                    "unknown_event_type",
                    f"Unknown event type; choose from {', '.join(EVENT_TYPES)}.",
                )
            )
    if not event_types:
        issues.append(FieldIssue("event_types", "required", "Subscribe to at least one event type."))
    if issues:
        raise InvalidInput("The webhook endpoint is not valid.", fields=issues)
    return list(dict.fromkeys(event_types))


def create_endpoint(
    rt: Runtime, caller: Caller, occasion_id: str, *, url: str, event_types: list[str]
) -> tuple[dict[str, Any], str]:
    """Create an endpoint; returns its view and the signing secret (shown this once only)."""
    with rt.db.write() as session:
        authorize(session, caller, MANAGE, occasion_id)
        types = _check_endpoint_input(url, event_types, allow_private=rt.settings.allow_private_urls)
        endpoint_id = new_id("whe")
        signing_secret = new_signing_secret()
        sealed = credentials.seal_endpoint_secret(rt.keyring, endpoint_id, signing_secret)
        endpoint = WebhookEndpoint(
            id=endpoint_id,
            occasion_id=occasion_id,
            url=url,
            event_types=types,
            secret_key_id=sealed.key_id,
            secret_nonce=sealed.nonce,
            secret_ciphertext=sealed.ciphertext,
            state="active",
            created_by=caller.subject_id,
            created_at=utcnow(),
        )
        session.add(endpoint)
        activity.record(
            session,
            kind="webhook.endpoint_created",
            actor=caller.subject_id,
            summary=f"Webhook endpoint {url} was added for {', '.join(types)}",
            occasion_id=occasion_id,
            details={"endpoint_id": endpoint_id, "url": url, "event_types": types},
        )
        view = endpoint_as_dict(endpoint)
    return view, signing_secret


def _delivery_as_dict(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> dict[str, Any]:
    def ts(value: datetime | None) -> str | None:
        return format_timestamp(value) if value else None

    return {
        "id": delivery.id,
        "event_type": delivery.event_type,
        "event_id": (delivery.payload or {}).get("id"),
        "state": delivery.state,
        "attempt": delivery.attempt,
        "next_attempt_at": ts(delivery.next_attempt_at),
        "created_at": ts(delivery.created_at),
        "delivered_at": ts(delivery.delivered_at),
        "attempts": [
            {
                "attempted_at": ts(a.attempted_at),
                "status_code": a.status_code,
                "duration_ms": a.duration_ms,
                "succeeded": a.succeeded,
                "error": a.error,
                "response_excerpt": a.response_excerpt,
            }
            for a in attempts
        ],
    }


def list_endpoints(
    rt: Runtime, caller: Caller, occasion_id: str, *, limit: int | None = None, cursor: str | None = None
) -> Page[dict[str, Any]]:
    """The occasion's endpoints (oldest first), each with its most recent deliveries and attempts."""
    with rt.db.read() as session:
        authorize(session, caller, MANAGE, occasion_id)
        query, size = paginate(
            select(WebhookEndpoint).where(WebhookEndpoint.occasion_id == occasion_id),
            WebhookEndpoint.id,
            limit=limit,
            cursor=cursor,
        )
        page = page_of(session.scalars(query).all(), size, lambda e: e.id)
        recent: dict[str, list[WebhookDelivery]] = {}
        for endpoint in page.items:
            recent[endpoint.id] = list(
                session.scalars(
                    select(WebhookDelivery)
                    .where(WebhookDelivery.endpoint_id == endpoint.id)
                    .order_by(WebhookDelivery.id.desc())
                    .limit(RECENT_DELIVERIES)
                )
            )
        delivery_ids = [d.id for ds in recent.values() for d in ds]
        attempts: dict[str, list[WebhookAttempt]] = {d: [] for d in delivery_ids}
        if delivery_ids:
            for attempt in session.scalars(
                select(WebhookAttempt)
                .where(one_of(WebhookAttempt.delivery_id, delivery_ids))
                .order_by(WebhookAttempt.id)
            ):
                attempts[attempt.delivery_id].append(attempt)
        items = [
            {
                **endpoint_as_dict(e),
                "recent_deliveries": [_delivery_as_dict(d, attempts[d.id]) for d in recent[e.id]],
            }
            for e in page.items
        ]
    return Page(items, page.next_cursor)
