"""Serve the partner hot path without FastAPI's per-request layers (the one place for this trick).

A partner callback is the API's busiest request, and half of its event-loop time was not ours:
routing through every route's regex, the exception middleware, the async exit stack, FastAPI's
request handler and its dependency solver, none of which a ``(request) -> Response`` endpoint
uses (docs/benchmarks.md, "Callbacks, part 3": the loop's CPU per callback fell from 105 to 54 µs).

:class:`DirectRoutes` sits innermost among the app's own middlewares, so the request ids, the
body-size limit and, when tracing is on, the request's span still wrap it. A request that fully
matches one of its routes (path *and* method, by the route's own ``matches``) is answered by that
route's endpoint directly; anything else, including a wrong method (405), goes on to FastAPI.
The routes stay registered with FastAPI too, so the OpenAPI document and ``url_path_for`` are
unchanged, and the endpoint is the same function either way.

Only endpoints that take the request alone and handle their own errors belong here: nothing
declared on the route (dependencies, parameters, a response model, exception handlers) is applied.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]


class DirectRoutes:
    """ASGI middleware: answer full matches of ``routes`` with their endpoints, bypassing FastAPI."""

    def __init__(self, app: ASGIApp, routes: Sequence[APIRoute]) -> None:
        self.app = app
        for route in routes:
            _check(route)
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    endpoint: Endpoint = route.endpoint
                    response = await endpoint(Request(scope, receive))
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _check(route: APIRoute) -> None:
    """Refuse a route whose declaration would be silently ignored on the direct path."""
    dependant = route.dependant
    declared = (
        dependant.path_params,
        dependant.query_params,
        dependant.header_params,
        dependant.cookie_params,
        dependant.body_params,
        dependant.dependencies,
        route.dependencies,
    )
    plain = (
        inspect.iscoroutinefunction(route.endpoint)
        and dependant.request_param_name is not None
        and len(inspect.signature(route.endpoint).parameters) == 1
        and not any(declared)
        and route.response_model is None
    )
    if not plain:
        raise ValueError(f"{route.path}: a direct route takes only the request and declares nothing else")
