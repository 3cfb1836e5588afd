"""A pure ASGI middleware: every HTTP answer carries ``x-request-id``, bound while it is made.

The id is the caller's when it is a sane token, else a new one (:func:`tovplus.runtime.trace.accept`).
It is also left in ``scope["state"]["request_id"]`` so the 500 handler, which Starlette runs
outside every middleware, can put it on that answer too.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tovplus.runtime import trace

_HEADER = trace.REQUEST_ID_HEADER.encode()


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = None
        for name, value in scope.get("headers", ()):
            if name == _HEADER:
                offered = value.decode("latin-1")
                break
        request_id = trace.accept(offered)
        scope.setdefault("state", {})["request_id"] = request_id
        raw = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _HEADER]
                message = {**message, "headers": [*headers, (_HEADER, raw)]}
            await send(message)

        with trace.bound(request_id):
            await self.app(scope, receive, send_with_id)


def request_id_of(scope: Scope) -> str | None:
    """The id :class:`RequestIds` gave this request (for answers made outside it)."""
    state = scope.get("state")
    value = state.get("request_id") if isinstance(state, dict) else None
    return value if isinstance(value, str) else None
