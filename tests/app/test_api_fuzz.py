"""No input produces a 500: property-based requests generated from the app's own OpenAPI.

Schemathesis turns each operation of issue 3's routes into a Hypothesis strategy, in
both positive (schema-valid) and negative (schema-violating) modes. Each example is sent
through the ASGI app with a token drawn from planners, an admin, an integration key,
a made-up key and no token at all, and half the time with path parameters swapped for
real ids, so the examples reach the services instead of stopping at 404. Every
response must be a non-5xx with a documented status, content type and schema.

Bounded for ``make test``: ``TOVPLUS_FUZZ_EXAMPLES`` examples per operation (default
12, about 250 in all) and derandomized, so the suite is stable; set
``TOVPLUS_FUZZ_RANDOM=1`` and a larger count to go exploring.

The OpenAPI document itself is checked here too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import Api, empty_database, make_settings
from tovplus.app import create_app
from tovplus.runtime import build_runtime

EXAMPLES = int(os.environ.get("TOVPLUS_FUZZ_EXAMPLES", "12"))
RANDOM = os.environ.get("TOVPLUS_FUZZ_RANDOM") == "1"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

INT = "/v1/occasions/{occasion_id}/integrations"
#: The routes of issue 3 (contract sections: planner lifecycle, admin, platform, records).
OPERATIONS = [
    ("GET", INT),
    ("POST", f"{INT}/connections"),
    ("GET", f"{INT}/connections/{{connection_id}}"),
    ("PATCH", f"{INT}/connections/{{connection_id}}"),
    ("POST", f"{INT}/connections/{{connection_id}}/sync"),
    ("GET", f"{INT}/connections/{{connection_id}}/records"),
    ("GET", f"{INT}/activity"),
    ("GET", "/v1/admin/integrations"),
    ("GET", "/v1/admin/integrations/activity"),
    ("POST", "/v1/occasions"),
    ("GET", "/v1/occasions/{occasion_id}"),
    ("GET", "/v1/occasions/{occasion_id}/events"),
    ("POST", "/v1/occasions/{occasion_id}/events"),
    ("GET", "/v1/occasions/{occasion_id}/guests"),
    ("POST", "/v1/occasions/{occasion_id}/guests"),
    ("GET", "/v1/integrations/me"),
    ("GET", "/v1/integrations/catalog"),
]


def world(api: Api) -> dict[str, Any]:
    """Users, an occasion with an event, connections in several states, and a live key."""
    planner, admin = api.user("planner"), api.user("admin")
    occasion = api.occasion(planner)
    event = api.event(planner, occasion)
    api.client.post(f"/v1/occasions/{occasion}/guests", json={"name": "Ola"}, headers=api.auth(planner))
    connections = []
    key = None
    for body in (
        {"state": "enabled"},
        {},
        {"scope": {"type": "event", "event_id": event}, "state": "enabled"},
    ):
        r = api.connect(planner, occasion, **body)
        assert r.status_code == 201, r.text
        connections.append(r.json()["connection"]["id"])
        key = key or r.json()["issued_key"]
    return {
        "tokens": [planner, api.user("planner"), admin, key, "tov_ik00_madeup", None],
        "occasion": occasion,
        "connections": connections,
    }


@pytest.fixture(scope="module")
def fuzz_env(migrated_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One database, app, world and loaded schema shared by every operation's run."""
    tmp = tmp_path_factory.mktemp("fuzz")
    settings = make_settings(empty_database(migrated_template, tmp), tmp / "data")
    rt = build_runtime(settings)
    try:
        with TestClient(create_app(rt), raise_server_exceptions=False) as client:
            w = world(Api(client, rt))
            w["schema"] = schemathesis.openapi.from_asgi("/openapi.json", client.app)
            yield w
    finally:
        rt.close()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_input_gives_a_500(fuzz_env: dict[str, Any], method: str, path: str) -> None:
    w = fuzz_env
    operation = w["schema"][path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
    )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=cases,
        token=st.sampled_from(w["tokens"]),
        real_ids=st.booleans(),
        connection=st.sampled_from(w["connections"]),
    )
    def run(case: Any, token: str | None, real_ids: bool, connection: str) -> None:
        if real_ids and case.path_parameters is not None:
            if "occasion_id" in case.path_parameters:
                case.path_parameters["occasion_id"] = w["occasion"]
            if "connection_id" in case.path_parameters:
                case.path_parameters["connection_id"] = connection
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS)
        if response.status_code >= 400:
            error = response.json()["error"]
            assert isinstance(error["code"], str)
            assert isinstance(error["message"], str)
            assert isinstance(error["fields"], list)

    run()


def test_openapi_describes_every_route_with_models_and_the_error_envelope(client) -> None:
    spec = client.get("/openapi.json").json()
    assert client.get("/docs").status_code == 200
    schemas = spec["components"]["schemas"]
    assert "ErrorEnvelope" in schemas
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for method, path in OPERATIONS:
        op = spec["paths"][path][method.lower()]
        success = [code for code in op["responses"] if code.startswith("2")]
        assert len(success) == 1, (method, path)
        ok = op["responses"][success[0]]["content"]["application/json"]["schema"]
        assert "$ref" in ok, (method, path)
        for code in ("400", "401", "403", "404", "409", "413", "422", "429"):
            error = op["responses"][code]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorEnvelope"}, (method, path, code)
        if method in ("POST", "PATCH") and not path.endswith("/sync"):
            body = op["requestBody"]["content"]["application/json"]["schema"]
            assert "$ref" in body, (method, path)
        assert op.get("security") == [{"HTTPBearer": []}], (method, path)
    connection = schemas["ConnectionModel"]["properties"]
    for name in (
        "id",
        "occasion_id",
        "integration_key",
        "state",
        "health",
        "health_reasons",
        "config",
        "redacted_secrets",
        "validation",
        "scope",
        "action_keys",
        "principal",
        "grants",
        "last_sync_at",
        "last_sync_status",
        "created_at",
        "updated_at",
    ):
        assert name in connection, name
    assert set(schemas["ConnectionCreateIn"]["properties"]) >= {
        "integration_key",
        "config",
        "secrets",
        "scope",
        "action_keys",
        "state",
    }
    assert set(schemas["ConnectionPatchIn"]["properties"]) >= {
        "state",
        "config",
        "secrets",
        "action_keys",
        "rotate_key",
    }


def test_inputs_no_backend_can_store_are_refused_cleanly(api: Api) -> None:
    """Hand-picked inputs that once reached the database as 500s (mostly on PostgreSQL)."""
    planner = api.user("planner")
    occasion = api.occasion(planner)
    cid = api.connect(planner, occasion).json()["connection"]["id"]
    base = f"/v1/occasions/{occasion}/integrations"
    headers = {**api.auth(planner), "content-type": "application/json"}
    create = f"{base}/connections"
    cases: list[tuple[str, str, str | None, int]] = [
        ("POST", create, '{"integration_key": "printing_partner", "config": {"account_id": NaN}}', 422),
        ("POST", create, '{"integration_key": "printing_partner", "config": {"account_id": "\\ud800"}}', 422),
        (
            "POST",
            create,
            '{"integration_key": "printing_partner", "secrets": {"api_key": "\\udfffabcdefghijk"}}',
            422,
        ),
        (
            "POST",
            create,
            '{"integration_key": "printing_partner", "config": {"account_id": "a\\u0000b"}}',
            422,
        ),
        ("POST", create, '{"integration_key": "printing_partner", "config": {"account_id": 1e400}}', 422),
        (
            "POST",
            create,
            '{"integration_key": "printing_partner", "scope": {"type": "event", "event_id": "\\u0000"}}',
            422,
        ),
        (
            "POST",
            create,
            '{"integration_key": "printing_partner", "config": ' + '{"a": ' * 40 + "1" + "}" * 41,
            422,
        ),
        ("PATCH", f"{create}/{cid}", '{"config": {"account_id": Infinity}}', 422),
        ("PATCH", f"{create}/{cid}", '{"secrets": {"api_key": "x\\u0000yyyyyyyyyyyy"}}', 422),
        (
            "POST",
            f"/v1/occasions/{occasion}/events",
            '{"name": "x", "starts_at": "2027-01-01T10:00:00"}',
            422,
        ),
        (
            "POST",
            f"/v1/occasions/{occasion}/events",
            '{"name": "x", "starts_at": "9999-12-31T23:59:59-05:00"}',
            422,
        ),
        ("POST", f"/v1/occasions/{occasion}/events", '{"name": "\\u0000"}', 422),
        ("POST", "/v1/occasions", '{"name": "\\ud83d", "starts_on": "2020-01-01"}', 422),
        ("GET", "/v1/occasions/%00/integrations", None, 404),
        ("GET", f"{create}/%00", None, 404),
        ("GET", f"{create}/%00/records", None, 404),
        ("POST", f"{create}/%00/sync", None, 404),
        ("GET", f"{base}/activity?connection_id=%00", None, 404),
        ("GET", f"{base}/activity?cursor=eyJhZnRlciI6ICJcdTAwMDAifQ", None, 422),
        ("GET", "/v1/occasions/%00/events", None, 404),
    ]
    wrong = []
    for method, path, body, status in cases:
        content = body.encode("utf-8", "surrogatepass") if body is not None else None
        r = api.client.request(method, path, content=content, headers=headers)
        if r.status_code != status or "error" not in r.json():
            wrong.append((method, path, body, r.status_code, r.text[:200]))
    assert wrong == []
    admin = api.auth(api.user("admin"))
    for query in ("occasion_id=%00", "integration_key=%00", "cursor=%00"):
        assert api.client.get(f"/v1/admin/integrations?{query}", headers=admin).status_code == 422
