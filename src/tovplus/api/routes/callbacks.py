"""``POST /v1/integrations/callbacks/{integration_key}/{connection_id}`` (no bearer token).

Kept async and thin on purpose: read the body (``BodySizeLimit`` stops it at
``max_callback_body_bytes`` while it streams: 413), parse it (400), and await the
callback service, whose group-commit writer answers once the callback is
committed. Everything else lives in :mod:`tovplus.services.callbacks`.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from tovplus.api.errors import envelope, error_response, status_for
from tovplus.api.limits import BodyTooLarge
from tovplus.errors import TovPlusError
from tovplus.integrations import standard_webhooks
from tovplus.runtime.metrics import CALLBACKS
from tovplus.services.callbacks import (
    DELIVERY_HEADER,
    SECRET_HEADER,
    CallbackService,
    InboundCallback,
    parse_body,
)

_tuned = False
#: The GIL switch interval of a serving process (CPython's default is 5 ms).
SWITCH_INTERVAL = 0.002


def tune_interpreter() -> None:
    """Garbage-collector and GIL settings for a busy API process (once per process).

    * Start-up leaves ~150,000 long-lived objects (modules, models, routes) that every full
      collection would rescan: a 50-300 ms pause under load, the largest part of the hot
      path's p99. ``gc.freeze()`` moves them out of the collector's sight.
    * Almost everything a request allocates is freed by reference counting, yet the default
      young-generation threshold (700) still runs a collection every few requests: about
      40 µs of CPU per callback. 20,000 makes that rare; cyclic garbage still goes, later.
    * The event loop and the group-commit writer hand work to each other, and every database
      call of the writer gives the GIL away and must take it back while the loop is busy; a
      waiting thread asks for it after the switch interval. 2 ms instead of 5 ms: callbacks on
      SQLite +5-10 % (docs/benchmarks.md, "Callbacks, part 3"); 0.2 ms cost more in switching
      than it saved.
    """
    global _tuned
    if _tuned:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    sys.setswitchinterval(SWITCH_INTERVAL)
    _tuned = True


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    runtime = getattr(app.state, "runtime", None)
    if runtime is not None and runtime.settings.environment != "test":
        tune_interpreter()  # not in tests, where each test's app would otherwise be frozen in for good
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


_counters: dict[tuple[str, str], Any] = {}


def _count(label: str, status: str) -> None:
    counter = _counters.get((label, status))
    if counter is None:
        counter = _counters[(label, status)] = CALLBACKS.labels(label, status)
    counter.inc()


#: The headers the service reads, by their (lower-case) ASGI names.
_HEADERS = {
    SECRET_HEADER.encode(): 0,
    DELIVERY_HEADER.encode(): 1,
    standard_webhooks.ID_HEADER.encode(): 2,
    standard_webhooks.TIMESTAMP_HEADER.encode(): 3,
    standard_webhooks.SIGNATURE_HEADER.encode(): 4,
}


async def _read_body(request: Request) -> bytes:
    """The whole body, as ``request.body()`` reads it, without its async generator and context
    manager (7.1 against 2.5 µs per request on the loaded machine, the request object included)."""
    chunks: list[bytes] = []
    while True:
        message = await request.receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


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
            {"name": "integration_key", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "connection_id", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": SECRET_HEADER, "in": "header", "required": False, "schema": {"type": "string"}},
            {"name": DELIVERY_HEADER, "in": "header", "required": False, "schema": {"type": "string"}},
        ],
    },
)
async def receive_callback(request: Request) -> Response:
    """Authenticate, deduplicate, map and store a partner's callback; 202 means committed."""
    received_at = time.time()
    # the path parameters are read here rather than declared, which spares the hot path
    # FastAPI's per-request parameter validation (they are plain strings either way)
    integration_key: str = request.path_params["integration_key"]
    connection_id: str = request.path_params["connection_id"]
    service = callback_service(request)
    try:
        body = await _read_body(request)
        payload = parse_body(body)
        found: list[str | None] = [None] * 5
        for name, value in request.scope["headers"]:
            index = _HEADERS.get(name)
            if index is not None and found[index] is None:
                found[index] = value.decode("latin-1")
        outcome = await service.receive(
            InboundCallback(
                integration_key=integration_key,
                connection_id=connection_id,
                body=body,
                payload=payload,
                secret=found[0],
                delivery_id=found[1],
                webhook_id=found[2],
                webhook_timestamp=found[3],
                webhook_signature=found[4],
                received_at=received_at,
            )
        )
    except TovPlusError as exc:
        _count(_label(service, integration_key), str(status_for(exc)))
        return error_response(exc)
    except ClientDisconnect:  # the partner hung up mid-body: nobody is listening, nothing was stored
        return Response(status_code=400)
    except BodyTooLarge:  # the size limit, hit while reading: BodySizeLimit answers 413
        _count(_label(service, integration_key), "413")
        raise
    except Exception:
        log.exception("callback could not be stored")
        _count(_label(service, integration_key), "503")
        return JSONResponse(
            envelope("unavailable", "The callback could not be stored right now; retry it."),
            status_code=503,
            headers={"Retry-After": "1"},
        )
    status = outcome.http_status
    _count(integration_key, "202" if status == 202 else "200")
    # activity ids are [a-z0-9_]: no JSON escaping needed
    content = b'{"status":"%s","activity_id":"%s"}' % (outcome.status.encode(), outcome.activity_id.encode())
    return Response(content, status_code=status, media_type="application/json")


def direct_routes() -> list[APIRoute]:
    """The routes :class:`~tovplus.api.hot_path.DirectRoutes` serves without FastAPI's layers."""
    return [
        route for route in router.routes if isinstance(route, APIRoute) and route.endpoint is receive_callback
    ]
