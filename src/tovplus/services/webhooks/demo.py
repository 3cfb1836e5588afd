"""The webhooks part of ``make run``: an endpoint on the partner simulator's receiver for the demo
occasion, subscribed to every event type, and a first test event so its log is not empty."""

from __future__ import annotations

from sqlalchemy import select

from tovplus.db.models import WebhookEndpoint
from tovplus.runtime import Runtime
from tovplus.services.auth import Caller
from tovplus.services.webhooks.catalog import EVENT_TYPES
from tovplus.services.webhooks.endpoints import create_endpoint
from tovplus.services.webhooks.operations import send_test


def seed_webhooks_demo(rt: Runtime, caller: Caller, occasion_id: str, receiver_url: str) -> str | None:
    """Add the demo endpoint once (returns its signing secret then; ``None`` when it exists or
    private URLs are not allowed, as the simulator is on loopback)."""
    if not rt.settings.allow_private_urls:
        return None
    with rt.db.read() as session:
        if session.scalar(select(WebhookEndpoint.id).where(WebhookEndpoint.occasion_id == occasion_id)):
            return None
    endpoint, secret = create_endpoint(
        rt, caller, occasion_id, url=receiver_url, event_types=list(EVENT_TYPES)
    )
    send_test(rt, caller, occasion_id, endpoint.id)
    return secret
