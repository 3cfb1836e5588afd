"""/docs and /redoc load their assets from this server (no CDN), and every route has examples."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tovplus.api.docs import ERROR_EXAMPLES


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_use_only_local_assets(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources, page.text
    for source in sources:
        assert source.startswith("/"), f"{path} loads {source} from elsewhere"
        if source.endswith((".js", ".css")):
            asset = client.get(source)
            assert asset.status_code == 200, source
            assert len(asset.content) > 10_000, source
            assert b"https://cdn." not in asset.content, f"{source} still fetches from a CDN"


def test_every_route_has_request_and_response_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    missing = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and "example" not in body:
                missing.append(f"{method.upper()} {path} request")
            for status, response in op["responses"].items():
                media = response.get("content", {}).get("application/json")
                if media is not None and "example" not in media:
                    missing.append(f"{method.upper()} {path} {status}")
                if media is not None and status in ERROR_EXAMPLES:
                    assert set(media["example"]) == {"error"}, (path, status)
                    assert set(media["example"]["error"]) == {"code", "message", "fields"}
    assert not missing, "no example: " + ", ".join(missing)


def test_connection_create_example_is_accepted_by_the_route(client: TestClient, api) -> None:
    spec = client.get("/openapi.json").json()
    route = spec["paths"]["/v1/occasions/{occasion_id}/integrations/connections"]["post"]
    example = route["requestBody"]["content"]["application/json"]["example"]
    planner = api.user()
    occ = api.occasion(planner)
    r = client.post(f"/v1/occasions/{occ}/integrations/connections", json=example, headers=api.auth(planner))
    assert r.status_code == 201, r.text
