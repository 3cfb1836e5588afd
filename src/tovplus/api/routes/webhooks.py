"""Outbound webhook endpoints of an occasion (planners of the occasion and admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from tovplus.api.deps import CallerDep, RuntimeDep
from tovplus.api.schemas import WebhookEndpointIn
from tovplus.services import webhooks
from tovplus.services.webhooks import WebhookEndpointListedOut, WebhookEndpointOut

router = APIRouter(prefix="/v1/occasions/{occasion_id}/webhook-endpoints", tags=["webhooks"])
Limit = Annotated[int | None, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200)]


class WebhookEndpointCreatedOut(BaseModel):
    endpoint: WebhookEndpointOut
    signing_secret: str


class WebhookEndpointListOut(BaseModel):
    endpoints: list[WebhookEndpointListedOut]
    next_cursor: str | None


@router.post("", status_code=201, response_model=WebhookEndpointCreatedOut)
def create(
    occasion_id: str, body: WebhookEndpointIn, rt: RuntimeDep, caller: CallerDep
) -> WebhookEndpointCreatedOut:
    """Add an endpoint; ``signing_secret`` (``whsec_…``) is shown in this response only."""
    endpoint, signing_secret = webhooks.create_endpoint(
        rt, caller, occasion_id, url=body.url, event_types=body.event_types
    )
    return WebhookEndpointCreatedOut(endpoint=endpoint, signing_secret=signing_secret)


@router.get("", response_model=WebhookEndpointListOut)
def list_endpoints(
    occasion_id: str, rt: RuntimeDep, caller: CallerDep, limit: Limit = None, cursor: Cursor = None
) -> WebhookEndpointListOut:
    """The occasion's endpoints with their most recent deliveries and each delivery's attempts."""
    page = webhooks.list_endpoints(rt, caller, occasion_id, limit=limit, cursor=cursor)
    return WebhookEndpointListOut(endpoints=page.items, next_cursor=page.next_cursor)
