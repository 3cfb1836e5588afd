"""Sending one delivery: the exact bytes, the Standard Webhooks headers, the POST, its outcome.

Signing (:mod:`tovplus.integrations.standard_webhooks`): ``webhook-id`` is the delivery id,
kept across retries, ``webhook-timestamp`` the Unix seconds of this attempt, and
``webhook-signature`` is keyed with the base64-decoded part of the endpoint's ``whsec_…``
signing secret.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from tovplus.db.types import utcnow
from tovplus.errors import Forbidden
from tovplus.integrations import standard_webhooks
from tovplus.integrations.http import ClientCache, outbound_client
from tovplus.integrations.redaction import scrubber
from tovplus.integrations.urls import check_url
from tovplus.runtime import Runtime

#: A ``Retry-After`` longer than this is capped.
MAX_RETRY_AFTER = timedelta(hours=24)
EXCERPT_CHARS = 1000
_READ_LIMIT_BYTES = 8192
CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 10.0
USER_AGENT = "TOVPlus-Webhooks/1"


def sign(signing_secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one request, signed with a ``whsec_…`` secret by the
    reference implementation (the ``standardwebhooks`` package)."""
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return Webhook(signing_secret).sign(webhook_id, when, body.decode("utf-8"))


def signed_headers(secrets: Sequence[str], webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers; one signature per secret, space-separated, in the
    order given (during a rotation's overlap: the new secret first, then the old one)."""
    return {
        standard_webhooks.ID_HEADER: webhook_id,
        standard_webhooks.TIMESTAMP_HEADER: str(timestamp),
        standard_webhooks.SIGNATURE_HEADER: " ".join(sign(s, webhook_id, timestamp, body) for s in secrets),
    }


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed); key order is fixed so every retry sends the same body."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


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
    """Close the process's webhook HTTP clients."""
    _clients.close()


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


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery this worker holds the lease of, with what sending it needs."""

    delivery_id: str
    attempt: int
    endpoint_id: str
    occasion_id: str
    url: str
    body: bytes
    signing_secret: str | None
    problem: str | None  # set when the delivery cannot be sent at all (e.g. undecryptable secret)
    endpoint_failing: bool
    #: The problem is final: no later attempt can send it (a signing secret that does not decrypt).
    unsendable: bool = False
    #: The secret a rotation replaced, while its overlap lasts (signed with after the new one).
    previous_secrets: tuple[str, ...] = ()
    #: The request id of whoever queued the delivery: bound while it is sent and logged, so a
    #: batch of many deliveries still gives each its own trail (and ``X-Request-Id`` header).
    request_id: str | None = None
    #: The W3C ``traceparent`` stored when it was queued: its ``webhook.deliver`` span continues it.
    traceparent: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got: a status code, or the error that stopped it."""

    status_code: int | None
    duration_ms: float
    excerpt: str | None
    error: str | None
    retry_after: float | None

    @property
    def succeeded(self) -> bool:
        """A 2xx answer."""
        return self.status_code is not None and 200 <= self.status_code < 300


def send(rt: Runtime, claim: Claim) -> Outcome:
    """POST the claimed delivery, signed; never raises for what the network or receiver does."""
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 3)

    if claim.problem is not None or claim.signing_secret is None:
        return Outcome(None, 0.0, None, claim.problem or "No signing secret.", None)
    allow_private = rt.settings.allow_private_urls
    why_not = check_url(claim.url, allow_private=allow_private)
    if why_not is not None:
        return Outcome(None, 0.0, None, f"Refused: {why_not}", None)
    secrets = [claim.signing_secret, *claim.previous_secrets]
    headers = {
        "content-type": "application/json",
        **signed_headers(secrets, claim.delivery_id, int(time.time()), claim.body),
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
        return Outcome(None, elapsed(), None, f"Refused: {exc.message}", None)
    except httpx.TimeoutException:
        return Outcome(None, elapsed(), None, "The endpoint did not answer in time.", None)
    except httpx.HTTPError as exc:
        return Outcome(None, elapsed(), None, f"Could not reach the endpoint ({type(exc).__name__}).", None)
    error = None if 200 <= code < 300 else f"The endpoint answered HTTP {code}."
    return Outcome(code, elapsed(), excerpt, error, retry_after)
