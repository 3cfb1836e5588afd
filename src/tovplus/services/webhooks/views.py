"""The typed views of webhook endpoints and their deliveries (the API's response models).

The class names are the OpenAPI schema names partners already see, so they keep their ``Out``
suffix.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from tovplus.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tovplus.db.states import DeliveryState, EndpointState
from tovplus.integrations.payloads import format_timestamp
from tovplus.runtime.views import View


def _ts(value: datetime | None) -> str | None:
    return format_timestamp(value) if value else None


class WebhookEndpointOut(View):
    """An endpoint as its owner sees it: never the signing secret, not even redacted."""

    id: str
    occasion_id: str
    url: str
    event_types: list[str]
    state: Literal[EndpointState.ACTIVE, EndpointState.DISABLED]
    disabled_reason: str | None
    failing_since: str | None
    created_by: str
    created_at: str
    #: ``system`` when a 410 or failing too long disabled it, else who did.
    disabled_by: str | None = None
    disabled_at: str | None = None
    #: Until then every delivery is also signed with the secret the last rotation replaced.
    previous_secret_expires_at: str | None = None


class WebhookAttemptOut(View):
    """One attempt to deliver: when, what the receiver answered, how long it took."""

    attempted_at: str | None
    status_code: int | None
    duration_ms: float
    succeeded: bool
    error: str | None
    response_excerpt: str | None


class WebhookDeliveryOut(View):
    """One event for one endpoint, with every attempt so far."""

    id: str
    event_type: str
    event_id: str | None
    state: Literal[
        DeliveryState.PENDING,
        DeliveryState.DELIVERING,
        DeliveryState.DELIVERED,
        DeliveryState.FAILED,
        DeliveryState.CANCELLED,
    ]
    attempt: int
    next_attempt_at: str | None
    created_at: str | None
    delivered_at: str | None
    attempts: list[WebhookAttemptOut]


class WebhookEndpointListedOut(WebhookEndpointOut):
    """An endpoint in the occasion's list, with its most recent deliveries."""

    recent_deliveries: list[WebhookDeliveryOut]


def _endpoint_fields(endpoint: WebhookEndpoint) -> dict[str, object]:
    return {
        "id": endpoint.id,
        "occasion_id": endpoint.occasion_id,
        "url": endpoint.url,
        "event_types": list(endpoint.event_types or []),
        "state": EndpointState(endpoint.state),
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": _ts(endpoint.failing_since),
        "created_by": endpoint.created_by,
        "created_at": format_timestamp(endpoint.created_at),
        "disabled_by": endpoint.disabled_by,
        "disabled_at": _ts(endpoint.disabled_at),
        "previous_secret_expires_at": _ts(endpoint.previous_secret_expires_at),
    }


def endpoint_view(endpoint: WebhookEndpoint) -> WebhookEndpointOut:
    """The outward view of an endpoint."""
    return WebhookEndpointOut.model_validate(_endpoint_fields(endpoint))


def delivery_view(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> WebhookDeliveryOut:
    """A delivery with its attempts, oldest first."""
    return WebhookDeliveryOut(
        id=delivery.id,
        event_type=delivery.event_type,
        event_id=(delivery.payload or {}).get("id"),
        state=DeliveryState(delivery.state),
        attempt=delivery.attempt,
        next_attempt_at=_ts(delivery.next_attempt_at),
        created_at=_ts(delivery.created_at),
        delivered_at=_ts(delivery.delivered_at),
        attempts=[
            WebhookAttemptOut(
                attempted_at=_ts(a.attempted_at),
                status_code=a.status_code,
                duration_ms=a.duration_ms,
                succeeded=a.succeeded,
                error=a.error,
                response_excerpt=a.response_excerpt,
            )
            for a in attempts
        ],
    )


def listed_endpoint_view(
    endpoint: WebhookEndpoint, deliveries: list[WebhookDelivery], attempts: dict[str, list[WebhookAttempt]]
) -> WebhookEndpointListedOut:
    """An endpoint with its recent deliveries (newest first), as the list shows it."""
    return WebhookEndpointListedOut.model_validate(
        {
            **_endpoint_fields(endpoint),
            "recent_deliveries": [delivery_view(d, attempts[d.id]) for d in deliveries],
        }
    )


class LoggedAttemptOut(View):
    """One attempt in the message log (``GET …/deliveries``)."""

    at: str | None
    status_code: int | None
    duration_ms: float
    error: str | None
    #: The start of what the receiver answered, with anything that looks secret scrubbed.
    response_excerpt: str | None


class LoggedDeliveryOut(View):
    """One message in an endpoint's log; ``webhook_id`` is the ``webhook-id`` header it is sent with.

    ``state`` is ``pending`` (also while an attempt is in flight: ``in_flight``), ``delivered``,
    ``failed`` or ``cancelled`` (its endpoint was deleted or disabled by its owner)."""

    webhook_id: str
    event_type: str
    event_id: str | None
    state: Literal[
        DeliveryState.PENDING, DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.CANCELLED
    ]
    in_flight: bool
    created_at: str | None
    next_attempt_at: str | None
    delivered_at: str | None
    attempts: list[LoggedAttemptOut]


def logged_delivery_view(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> LoggedDeliveryOut:
    """A delivery as the message log shows it, attempts oldest first."""
    state = DeliveryState(delivery.state)
    return LoggedDeliveryOut(
        webhook_id=delivery.id,
        event_type=delivery.event_type,
        event_id=(delivery.payload or {}).get("id"),
        state=DeliveryState.PENDING if state == DeliveryState.DELIVERING else state,
        in_flight=state == DeliveryState.DELIVERING,
        created_at=_ts(delivery.created_at),
        next_attempt_at=_ts(delivery.next_attempt_at),
        delivered_at=_ts(delivery.delivered_at),
        attempts=[
            LoggedAttemptOut(
                at=_ts(a.attempted_at),
                status_code=a.status_code,
                duration_ms=a.duration_ms,
                error=a.error,
                response_excerpt=a.response_excerpt,
            )
            for a in attempts
        ],
    )
