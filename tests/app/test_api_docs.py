"""docs/api.md is the partner guide: its route index lists exactly the routes the service serves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
#: A route of the index table: ``| `GET /v1/...` | ... |``.
_ROW = re.compile(r"^\|\s*`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`\s*\|", re.MULTILINE)


def documented_routes() -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    index = text.split("## Route index", 1)[1]
    return {f"{method} {path}" for method, path in _ROW.findall(index)}


def served_routes(client: TestClient) -> set[str]:
    spec = client.get("/openapi.json").json()
    return {f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method in ops}


@pytest.mark.no_db
def test_the_route_index_parses() -> None:
    routes = documented_routes()
    assert "GET /v1/integrations/catalog" in routes
    assert len(routes) >= 20


def test_every_route_is_in_docs_api_md_and_the_reverse(client: TestClient) -> None:
    served, documented = served_routes(client), documented_routes()
    missing = sorted(served - documented)
    stale = sorted(documented - served)
    assert not missing, "add these rows to the route index of docs/api.md:\n" + "\n".join(
        f"| `{route}` | … |" for route in missing
    )
    assert not stale, "docs/api.md lists routes the service does not serve:\n" + "\n".join(stale)
