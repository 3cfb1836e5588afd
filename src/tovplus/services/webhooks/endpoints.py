"""An occasion's webhook endpoints: create one (with its signing secret), list them."""

from __future__ import annotations

from sqlalchemy import select

from tovplus.db.ids import new_id
from tovplus.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tovplus.db.sql import one_of
from tovplus.db.states import EndpointState
from tovplus.db.types import utcnow
from tovplus.errors import FieldIssue, InvalidInput
from tovplus.integrations import standard_webhooks
from tovplus.integrations.urls import check_url
from tovplus.runtime import Runtime
from tovplus.runtime.pagination import Page, page_of, paginate
from tovplus.services import activity, credentials
from tovplus.services.auth import MANAGE, Caller, authorize
from tovplus.services.webhooks.catalog import EVENT_TYPES
from tovplus.services.webhooks.views import (
    WebhookEndpointListedOut,
    WebhookEndpointOut,
    endpoint_view,
    listed_endpoint_view,
)

#: How many recent deliveries (newest first) the endpoint listing shows per endpoint.
RECENT_DELIVERIES = 10


def new_signing_secret() -> str:
    """A fresh ``whsec_<base64 of 32 random bytes>`` signing secret."""
    return standard_webhooks.new_secret()


def check_endpoint_input(url: str, event_types: list[str], *, allow_private: bool) -> list[str]:
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
) -> tuple[WebhookEndpointOut, str]:
    """Create an endpoint; returns its view and the signing secret (shown this once only)."""
    with rt.db.write() as session:
        authorize(session, caller, MANAGE, occasion_id)
        types = check_endpoint_input(url, event_types, allow_private=rt.settings.allow_private_urls)
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
            state=EndpointState.ACTIVE,
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
        view = endpoint_view(endpoint)
    return view, signing_secret


def list_endpoints(
    rt: Runtime, caller: Caller, occasion_id: str, *, limit: int | None = None, cursor: str | None = None
) -> Page[WebhookEndpointListedOut]:
    """The occasion's endpoints (oldest first), each with its most recent deliveries and attempts."""
    with rt.db.read() as session:
        authorize(session, caller, MANAGE, occasion_id)
        query, size = paginate(
            select(WebhookEndpoint).where(
                WebhookEndpoint.occasion_id == occasion_id, WebhookEndpoint.deleted_at.is_(None)
            ),
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
                .where(one_of(WebhookAttempt.delivery_id.expression, delivery_ids))
                .order_by(WebhookAttempt.id)
            ):
                attempts[attempt.delivery_id].append(attempt)
        items = [listed_endpoint_view(e, recent[e.id], attempts) for e in page.items]
    return Page(items, page.next_cursor)
