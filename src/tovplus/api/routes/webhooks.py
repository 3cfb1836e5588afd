"""Outbound webhook endpoints of an occasion (planners of the occasion and admins)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from tovplus.api.deps import CallerDep, RuntimeDep
from tovplus.api.schemas import WebhookEndpointIn
from tovplus.db.states import DeliveryState, EndpointState
from tovplus.services import webhooks

router = APIRouter(prefix="/v1/occasions/{occasion_id}/webhook-endpoints", tags=["webhooks"])
Limit = Annotated[int | None, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200)]


class WebhookEndpointOut(BaseModel):
    id: str
    occasion_id: str
    url: str
    event_types: list[str]
    state: Literal[EndpointState.ACTIVE, EndpointState.DISABLED]
    disabled_reason: str | None
    failing_since: str | None
    created_by: str
    created_at: str


class WebhookAttemptOut(BaseModel):
    attempted_at: str | None
    status_code: int | None
    duration_ms: float
    succeeded: bool
    error: str | None
    response_excerpt: str | None


class WebhookDeliveryOut(BaseModel):
    id: str
    event_type: str
    event_id: str | None
    state: Literal[
        DeliveryState.PENDING, DeliveryState.DELIVERING, DeliveryState.DELIVERED, DeliveryState.FAILED
    ]
    attempt: int
    next_attempt_at: str | None
    created_at: str | None
    delivered_at: str | None
    attempts: list[WebhookAttemptOut]


class WebhookEndpointListedOut(WebhookEndpointOut):
    recent_deliveries: list[WebhookDeliveryOut]


class WebhookEndpointCreatedOut(BaseModel):
    endpoint: WebhookEndpointOut
    signing_secret: str


class WebhookEndpointListOut(BaseModel):
    endpoints: list[WebhookEndpointListedOut]
    next_cursor: str | None


@router.post("", status_code=201, response_model=WebhookEndpointCreatedOut)
def create(occasion_id: str, body: WebhookEndpointIn, rt: RuntimeDep, caller: CallerDep) -> dict[str, Any]:
    """Add an endpoint; ``signing_secret`` (``whsec_…``) is shown in this response only."""
    endpoint, signing_secret = webhooks.create_endpoint(
        rt, caller, occasion_id, url=body.url, event_types=body.event_types
    )
    return {"endpoint": endpoint, "signing_secret": signing_secret}


@router.get("", response_model=WebhookEndpointListOut)
def list_endpoints(
    occasion_id: str, rt: RuntimeDep, caller: CallerDep, limit: Limit = None, cursor: Cursor = None
) -> dict[str, Any]:
    """The occasion's endpoints with their most recent deliveries and each delivery's attempts."""
    page = webhooks.list_endpoints(rt, caller, occasion_id, limit=limit, cursor=cursor)
    return {"endpoints": page.items, "next_cursor": page.next_cursor}
