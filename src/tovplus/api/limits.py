"""A pure ASGI middleware that enforces the body-size limit while the body is read."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tovplus.api.errors import envelope


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Reject bodies over ``limit_for(path)`` bytes with 413, by header or while streaming."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    break
                if declared > limit:
                    await _reject(send)
                    return
                if declared >= 0:
                    # the server hands the app exactly content-length bytes (more would be the
                    # next request): nothing to count, so the hot path skips the wrappers
                    await self.app(scope, receive, send)
                    return
                break
        received = 0
        started = False
        overflowed = False

        async def limited_receive() -> Message:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflowed = True
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if overflowed:
                # the app caught BodyTooLarge while reading (FastAPI turns any body error into
                # its own 400): whatever it answers is replaced by the 413, once
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _reject(send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _reject(send)


async def _reject(send: Send) -> None:
    body = json.dumps(envelope("payload_too_large", "The request body is too large.")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
