"""The event catalog and what an endpoint's owner does to it: patch, delete, rotate its secret,
test it, read its message log, resend, recover (contract: "Outbound webhooks, additions")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, BaseModel, Field, StrictBool, StrictStr

from tovplus.api.deps import CallerDep, RuntimeDep
from tovplus.api.schemas import Strict
from tovplus.services import webhooks
from tovplus.services.webhooks import EventTypeModel, LoggedDeliveryOut, WebhookEndpointOut

router = APIRouter(tags=["webhooks"])
ENDPOINT = "/v1/occasions/{occasion_id}/webhook-endpoints/{endpoint_id}"
Limit = Annotated[int | None, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200)]
Status = Annotated[str | None, Query(max_length=20)]


class EventTypesOut(BaseModel):
    event_types: list[EventTypeModel]


class WebhookEndpointPatchIn(Strict):
    url: StrictStr | None = Field(default=None, max_length=2048)
    event_types: list[StrictStr] | None = Field(default=None, min_length=1, max_length=20)
    enabled: StrictBool | None = None


class WebhookEndpointOneOut(BaseModel):
    endpoint: WebhookEndpointOut


class SigningSecretOut(BaseModel):
    signing_secret: str


class DeliveriesOut(BaseModel):
    deliveries: list[LoggedDeliveryOut]
    next_cursor: str | None


class RecoverIn(Strict):
    since: AwareDatetime


class QueuedOut(BaseModel):
    queued: int


class WebhookIdOut(BaseModel):
    webhook_id: str


@router.get("/v1/webhooks/event-types", response_model=EventTypesOut)
def event_types() -> EventTypesOut:
    """Every event type an endpoint can subscribe to, with the JSON Schema of its payload."""
    return EventTypesOut(event_types=webhooks.event_type_views())


@router.patch(ENDPOINT, response_model=WebhookEndpointOneOut)
def patch_endpoint(
    occasion_id: str, endpoint_id: str, body: WebhookEndpointPatchIn, rt: RuntimeDep, caller: CallerDep
) -> WebhookEndpointOneOut:
    """Change url, event types or enabled; re-enabling clears the failure record."""
    patch = webhooks.EndpointPatch(url=body.url, event_types=body.event_types, enabled=body.enabled)
    return WebhookEndpointOneOut(
        endpoint=webhooks.update_endpoint(rt, caller, occasion_id, endpoint_id, patch)
    )


@router.delete(ENDPOINT, status_code=204)
def delete_endpoint(occasion_id: str, endpoint_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    """Delete the endpoint; its pending deliveries are cancelled."""
    webhooks.delete_endpoint(rt, caller, occasion_id, endpoint_id)
    return Response(status_code=204)


@router.post(f"{ENDPOINT}/rotate-secret", response_model=SigningSecretOut)
def rotate_secret(occasion_id: str, endpoint_id: str, rt: RuntimeDep, caller: CallerDep) -> SigningSecretOut:
    """A new signing secret (shown once); for 24 hours deliveries are signed with both."""
    return SigningSecretOut(signing_secret=webhooks.rotate_secret(rt, caller, occasion_id, endpoint_id))


@router.post(f"{ENDPOINT}/test", status_code=202, response_model=WebhookIdOut)
def send_test(occasion_id: str, endpoint_id: str, rt: RuntimeDep, caller: CallerDep) -> WebhookIdOut:
    """Send a ``webhook.test`` event to this endpoint only."""
    return WebhookIdOut(webhook_id=webhooks.send_test(rt, caller, occasion_id, endpoint_id))


@router.get(f"{ENDPOINT}/deliveries", response_model=DeliveriesOut)
def deliveries(
    occasion_id: str,
    endpoint_id: str,
    rt: RuntimeDep,
    caller: CallerDep,
    status: Status = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> DeliveriesOut:
    """The endpoint's message log, newest first, with every attempt."""
    page = webhooks.list_deliveries(
        rt, caller, occasion_id, endpoint_id, status=status, limit=limit, cursor=cursor
    )
    return DeliveriesOut(deliveries=page.items, next_cursor=page.next_cursor)


@router.post(f"{ENDPOINT}/deliveries/{{webhook_id}}/resend", status_code=202)
def resend(
    occasion_id: str, endpoint_id: str, webhook_id: str, rt: RuntimeDep, caller: CallerDep
) -> Response:
    """Send one delivery again, with the same ``webhook-id``."""
    webhooks.resend(rt, caller, occasion_id, endpoint_id, webhook_id)
    return Response(status_code=202)


@router.post(f"{ENDPOINT}/recover", status_code=202, response_model=QueuedOut)
def recover(
    occasion_id: str, endpoint_id: str, body: RecoverIn, rt: RuntimeDep, caller: CallerDep
) -> QueuedOut:
    """Queue again every failed delivery since ``since``."""
    since: datetime = body.since
    return QueuedOut(queued=webhooks.recover(rt, caller, occasion_id, endpoint_id, since))
