"""A webhook receiver for ``make run``: ``POST /_webhooks`` keeps what TOV Plus sends (the last
100 deliveries, headers and body) and answers 200; ``GET /_webhooks`` lists them."""

from __future__ import annotations

from collections import deque
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_RECEIVED: deque[dict[str, Any]] = deque(maxlen=100)


async def receive(request: Request) -> Response:
    body = (await request.body()).decode("utf-8", errors="replace")
    _RECEIVED.append(
        {
            "webhook_id": request.headers.get("webhook-id"),
            "signature": request.headers.get("webhook-signature"),
            "body": body,
        }
    )
    return JSONResponse({"received": True})


async def listing(request: Request) -> Response:
    return JSONResponse({"received": list(_RECEIVED)})


ROUTES = [Route("/_webhooks", receive, methods=["POST"]), Route("/_webhooks", listing, methods=["GET"])]
