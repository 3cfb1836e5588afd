"""``POST /v1/integrations/callbacks/{integration_key}/{connection_id}`` (no bearer token).

Kept async and thin on purpose: read the body (``BodySizeLimit`` stops it at
``max_callback_body_bytes`` while it streams: 413), parse it (400), and await the
callback service, whose group-commit writer answers once the callback is
committed. Everything else lives in :mod:`tovplus.services.callbacks`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tovplus.api.errors import envelope, error_response, status_for
from tovplus.api.limits import BodyTooLarge
from tovplus.errors import TovPlusError
from tovplus.services.callbacks import (
    DELIVERY_HEADER,
    SECRET_HEADER,
    CallbackService,
    InboundCallback,
    parse_body,
)
from tovplus.services.metrics import CALLBACKS


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    service: CallbackService | None = getattr(app.state, "callback_service", None)
    if service is not None:
        service.close()  # commit what is queued before the process goes


router = APIRouter(tags=["callbacks"], lifespan=_lifespan)
log = logging.getLogger(__name__)

_OUTCOME_SCHEMA = {
    "type": "object",
    "required": ["status", "activity_id"],
    "properties": {
        "status": {"type": "string", "enum": ["accepted", "duplicate"]},
        "activity_id": {"type": "string"},
    },
}


def callback_service(request: Request) -> CallbackService:
    """The app's callback service (created on first use; stopped by the lifespan)."""
    state = request.app.state
    service: CallbackService | None = getattr(state, "callback_service", None)
    if service is None:
        service = state.callback_service = CallbackService(state.runtime)
    return service


def _label(service: CallbackService, integration_key: str) -> str:
    # only known keys become label values: a prober must not grow the metric without bound
    return integration_key if integration_key in service.rt.registry else "unknown"


@router.post(
    "/v1/integrations/callbacks/{integration_key}/{connection_id}",
    status_code=202,
    summary="Receive a partner callback",
    response_class=JSONResponse,
    responses={
        202: {
            "description": "Accepted and committed",
            "content": {"application/json": {"schema": _OUTCOME_SCHEMA}},
        },
        200: {
            "description": "A repeat of an accepted delivery id; nothing changed",
            "content": {"application/json": {"schema": _OUTCOME_SCHEMA}},
        },
        503: {"description": "The database is unavailable; retry"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
        },
        "parameters": [
            {"name": SECRET_HEADER, "in": "header", "required": False, "schema": {"type": "string"}},
            {"name": DELIVERY_HEADER, "in": "header", "required": False, "schema": {"type": "string"}},
        ],
    },
)
async def receive_callback(integration_key: str, connection_id: str, request: Request) -> Response:
    """Authenticate, deduplicate, map and store a partner's callback; 202 means committed."""
    received_at = time.time()
    service = callback_service(request)
    try:
        body = await request.body()
        payload = parse_body(body)
        headers = request.headers
        outcome = await service.receive(
            InboundCallback(
                integration_key=integration_key,
                connection_id=connection_id,
                body=body,
                payload=payload,
                secret=headers.get(SECRET_HEADER),
                delivery_id=headers.get(DELIVERY_HEADER),
                webhook_id=headers.get("webhook-id"),
                webhook_timestamp=headers.get("webhook-timestamp"),
                webhook_signature=headers.get("webhook-signature"),
                received_at=received_at,
            )
        )
    except TovPlusError as exc:
        CALLBACKS.labels(_label(service, integration_key), str(status_for(exc))).inc()
        return error_response(exc)
    except BodyTooLarge:  # the size limit, hit while reading: BodySizeLimit answers 413
        CALLBACKS.labels(_label(service, integration_key), "413").inc()
        raise
    except Exception:
        log.exception("callback could not be stored")
        CALLBACKS.labels(_label(service, integration_key), "503").inc()
        return JSONResponse(
            envelope("unavailable", "The callback could not be stored right now; retry it."),
            status_code=503,
            headers={"Retry-After": "1"},
        )
    status = outcome.http_status
    CALLBACKS.labels(integration_key, str(status)).inc()
    return Response(
        json.dumps(outcome.as_dict(), separators=(",", ":")),
        status_code=status,
        media_type="application/json",
    )
