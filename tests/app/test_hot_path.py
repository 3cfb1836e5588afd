"""``DirectRoutes``: hot routes answered by their endpoints without FastAPI's layers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.conftest import assert_error
from tovplus.api.hot_path import DirectRoutes
from tovplus.api.request_ids import RequestIds
from tovplus.api.routes import callbacks


def _app(seen: list[str]) -> tuple[FastAPI, APIRoute]:
    app = FastAPI()

    @app.post("/hot/{name}")
    async def hot(request: Request) -> Response:
        seen.append(request.path_params["name"])
        return JSONResponse({"name": request.path_params["name"], "app": request.app is app})

    @app.get("/other")
    async def other() -> dict[str, str]:
        return {"ok": "yes"}

    route = next(r for r in app.routes if isinstance(r, APIRoute) and r.endpoint is hot)
    app.add_middleware(DirectRoutes, routes=[route])
    app.add_middleware(RequestIds)
    return app, route


def _fail_if_called(route: APIRoute, calls: list[Any]) -> None:
    """Replace FastAPI's handler for ``route``: any call means the direct path was not taken."""

    async def recorded(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["path"])
        raise AssertionError("FastAPI's handler ran")

    route.app = recorded


def test_a_full_match_is_answered_by_the_endpoint_itself() -> None:
    seen: list[str] = []
    app, route = _app(seen)
    calls: list[Any] = []
    _fail_if_called(route, calls)
    with TestClient(app) as client:
        response = client.post("/hot/abc")
    assert response.status_code == 200
    assert response.json() == {"name": "abc", "app": True}
    assert response.headers["x-request-id"]  # the outer middlewares still wrap it
    assert seen == ["abc"]
    assert calls == []


def test_everything_else_goes_on_to_fastapi() -> None:
    seen: list[str] = []
    app, _route = _app(seen)
    with TestClient(app) as client:
        assert client.get("/other").json() == {"ok": "yes"}
        assert client.get("/hot/abc").status_code == 405  # path matches, method does not
        assert client.post("/hot/abc/more").status_code == 404
    assert seen == []


def test_a_route_with_declarations_is_refused() -> None:
    app = FastAPI()

    @app.post("/a/{name}")
    async def with_parameter(name: str) -> Response:
        return Response()

    def dependency() -> None:
        return None

    @app.post("/b")
    async def with_dependency(request: Request, _: None = Depends(dependency)) -> Response:
        return Response()

    @app.post("/c")
    def blocking(request: Request) -> Response:
        return Response()

    for route in app.routes:
        if isinstance(route, APIRoute):
            with pytest.raises(ValueError, match="a direct route takes only the request"):
                DirectRoutes(app, [route])


def test_the_product_serves_callbacks_directly(client: TestClient) -> None:
    routes = callbacks.direct_routes()
    assert [r.path for r in routes] == ["/v1/integrations/callbacks/{integration_key}/{connection_id}"]
    calls: list[Any] = []
    original = routes[0].app
    _fail_if_called(routes[0], calls)
    try:
        unknown = client.post("/v1/integrations/callbacks/venue_ops/con_nothere", json={"event": "x"})
        wrong_method = client.get("/v1/integrations/callbacks/venue_ops/con_nothere")
    finally:
        routes[0].app = original
    assert_error(unknown, 404, "not_found")  # the service's answer, through the direct path
    assert unknown.headers["x-request-id"]
    assert calls == []
    assert_error(wrong_method, 405)
