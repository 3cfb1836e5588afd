"""/healthz, /readyz, the catalog, and the envelope for routes and errors FastAPI itself raises."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import Api, assert_error


def test_healthz_answers_without_auth(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_is_ready_when_migrated(client):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"database": "ok", "migrations": "current", "secret_keys": "ok"}


def test_readyz_is_503_when_migrations_are_behind(client, runtime):
    with runtime.db.engine.begin() as c:
        current = c.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        c.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    try:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["migrations"] == "pending"
    finally:
        # on PostgreSQL the database is shared by later tests (they only truncate model tables)
        with runtime.db.engine.begin() as c:
            c.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": current})


def test_catalog_needs_a_token(client):
    assert_error(client.get("/v1/integrations/catalog"), 401, "unauthenticated")
    assert_error(
        client.get("/v1/integrations/catalog", headers={"Authorization": "Bearer tovu_nope"}),
        401,
        "unauthenticated",
    )
    assert_error(client.get("/v1/integrations/catalog", headers={"Authorization": "Basic abc"}), 401)


def test_catalog_lists_both_shipped_adapters_per_contract(api: Api):
    r = api.client.get("/v1/integrations/catalog", headers=api.auth(api.user("planner")))
    assert r.status_code == 200
    adapters = {a["integration_key"]: a for a in r.json()["adapters"]}
    printing = adapters["printing_partner"]
    assert printing["category"] == "printing"
    assert printing["direction"] == "bidirectional"
    assert printing["mode"] == "pull"
    assert printing["supports_background_sync"] is True
    assert printing["supports_inbound_callbacks"] is True
    assert printing["action_keys"] == ["occasion.read", "events.read", "guests.read"]
    assert [(f["key"], f["type"], f["required"]) for f in printing["config_fields"]] == [
        ("account_id", "string", True),
        ("api_base_url", "url", True),
    ]
    assert [(f["key"], f["required"]) for f in printing["secret_fields"]] == [("api_key", True)]
    venue = adapters["venue_ops"]
    assert (venue["category"], venue["direction"], venue["mode"]) == ("venue", "inbound", "callback")
    assert venue["supports_background_sync"] is False
    assert venue["supports_inbound_callbacks"] is True
    assert venue["action_keys"] == ["occasion.read", "events.read"]
    assert [(f["key"], f["required"]) for f in venue["config_fields"]] == [
        ("venue_id", True),
        ("timezone", False),
    ]
    assert [(f["key"], f["required"]) for f in venue["secret_fields"]] == [("api_token", True)]
    contract_field = {"key", "label", "type", "required", "help", "choices"}
    for field in printing["config_fields"]:  # plus what v1.1 added (fields may be added, never removed)
        assert set(field) == contract_field | {"max_length"}
    for field in venue["secret_fields"]:  # a secret field's limits are not shown
        assert set(field) == contract_field | {"max_length"}
        assert field["max_length"] is None


def test_unknown_route_and_method_use_the_envelope(client):
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")
    assert_error(client.delete("/healthz"), 405, "method_not_allowed")


def test_malformed_json_is_400(api: Api):
    token = api.user("planner")
    r = api.client.post(
        "/v1/occasions",
        content=b'{"name": "x", ',
        headers={**api.auth(token), "content-type": "application/json"},
    )
    assert_error(r, 400, "malformed_json")


def test_invalid_body_is_422_with_fields(api: Api):
    token = api.user("planner")
    r = api.client.post(
        "/v1/occasions", json={"name": "", "starts_on": "not-a-date"}, headers=api.auth(token)
    )
    error = assert_error(r, 422, "invalid_input")
    assert {f["field"] for f in error["fields"]} == {"name", "starts_on"}


def test_body_over_the_limit_is_413(api: Api):
    token = api.user("planner")
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'", "starts_on": "2027-01-01"}'
    r = api.client.post(
        "/v1/occasions", content=big, headers={**api.auth(token), "content-type": "application/json"}
    )
    assert_error(r, 413, "payload_too_large")


def test_openapi_documents_the_error_envelope(client):
    spec = client.get("/openapi.json").json()
    assert "ErrorEnvelope" in spec["components"]["schemas"]
    post = spec["paths"]["/v1/occasions/{occasion_id}/integrations/connections"]["post"]
    assert "409" in post["responses"]
