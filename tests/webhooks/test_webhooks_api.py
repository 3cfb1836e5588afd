"""The webhook endpoint routes: create (secret shown once), list, validation, SSRF, authorization."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Api, assert_error
from tests.webhooks.test_webhooks_delivery import Receiver, sync_completed_data, tuned
from tovplus.app import create_app
from tovplus.runtime import Runtime
from tovplus.services import webhooks

EVENT = "integration.sync_completed"


def path(occasion_id: str) -> str:
    return f"/v1/occasions/{occasion_id}/webhook-endpoints"


@pytest.fixture
def strict_client(runtime: Runtime) -> Iterator[TestClient]:
    """The API of a deployment where private URLs are not allowed (the production default)."""
    with TestClient(create_app(tuned(runtime, allow_private_urls=False)), raise_server_exceptions=False) as c:
        yield c


def test_create_shows_the_signing_secret_once_and_list_never(api: Api):
    token = api.user("planner")
    occ = api.occasion(token)
    r = api.client.post(
        path(occ),
        json={"url": "https://hooks.example.com/tov", "event_types": [EVENT, EVENT]},
        headers=api.auth(token),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    secret = body["signing_secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[len("whsec_") :])) == 32
    ep = body["endpoint"]
    assert ep["url"] == "https://hooks.example.com/tov"
    assert ep["event_types"] == [EVENT]
    assert (ep["state"], ep["occasion_id"], ep["disabled_reason"], ep["failing_since"]) == (
        "active",
        occ,
        None,
        None,
    )
    assert secret[len("whsec_") :] not in str(ep)

    listed = api.client.get(path(occ), headers=api.auth(token))
    assert listed.status_code == 200
    assert listed.json()["next_cursor"] is None
    [item] = listed.json()["endpoints"]
    assert item["id"] == ep["id"]
    assert item["recent_deliveries"] == []
    assert "signing_secret" not in item
    overview = api.client.get(f"/v1/occasions/{occ}/integrations", headers=api.auth(token))
    activity = api.client.get(f"/v1/occasions/{occ}/integrations/activity", headers=api.auth(token))
    for response in (listed, overview, activity):
        assert secret[len("whsec_") :] not in response.text
        assert "whsec_" not in response.text
    assert "webhook.endpoint_created" in [a["kind"] for a in activity.json()["activity"]]


def test_list_shows_recent_deliveries_with_their_attempts(api: Api, runtime: Runtime):
    receiver = Receiver(script=[(500, {})])
    try:
        rt = tuned(runtime, webhook_retry_delays=(0.0,))
        token = api.user("planner")
        occ = api.occasion(token)
        r = api.client.post(
            path(occ), json={"url": receiver.url, "event_types": [EVENT]}, headers=api.auth(token)
        )
        secret = r.json()["signing_secret"]
        with rt.db.write() as session:
            [delivery_id] = webhooks.emit_event(
                session, occasion_id=occ, event_type=EVENT, data=sync_completed_data(occ)
            )
        webhooks.deliver(rt, delivery_id, worker_id="w1")
        webhooks.deliver(rt, delivery_id, worker_id="w1")
    finally:
        receiver.stop()
    listed = api.client.get(path(occ), headers=api.auth(token))
    assert listed.status_code == 200
    [item] = listed.json()["endpoints"]
    [d] = item["recent_deliveries"]
    assert (d["id"], d["event_type"], d["state"], d["attempt"]) == (delivery_id, EVENT, "delivered", 2)
    assert d["delivered_at"] is not None
    assert [(a["status_code"], a["succeeded"]) for a in d["attempts"]] == [(500, False), (200, True)]
    assert d["attempts"][0]["error"] == "The endpoint answered HTTP 500."
    assert d["attempts"][0]["response_excerpt"] == "status 500"
    assert item["failing_since"] is None
    assert secret[len("whsec_") :] not in listed.text


def test_list_is_paginated(api: Api):
    token = api.user("planner")
    occ = api.occasion(token)
    ids = []
    for n in range(3):
        r = api.client.post(
            path(occ),
            json={"url": f"https://hooks.example.com/{n}", "event_types": [EVENT]},
            headers=api.auth(token),
        )
        ids.append(r.json()["endpoint"]["id"])
    first = api.client.get(path(occ), params={"limit": 2}, headers=api.auth(token)).json()
    assert [e["id"] for e in first["endpoints"]] == ids[:2]
    rest = api.client.get(
        path(occ), params={"limit": 2, "cursor": first["next_cursor"]}, headers=api.auth(token)
    ).json()
    assert [e["id"] for e in rest["endpoints"]] == ids[2:]
    assert rest["next_cursor"] is None


def test_unknown_event_types_are_422_and_nothing_is_created(api: Api):
    token = api.user("planner")
    occ = api.occasion(token)
    r = api.client.post(
        path(occ),
        json={"url": "https://hooks.example.com/tov", "event_types": [EVENT, "guest.eaten"]},
        headers=api.auth(token),
    )
    error = assert_error(r, 422, "invalid_input")
    assert [(f["field"], f["code"]) for f in error["fields"]] == [("event_types.1", "unknown_event_type")]
    assert api.client.get(path(occ), headers=api.auth(token)).json()["endpoints"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example.com/x", "event_types": [EVENT]}, "url"),
        ({"url": "https://", "event_types": [EVENT]}, "url"),
        ({"url": "https://user:pw@hooks.example.com/", "event_types": [EVENT]}, "url"),
        ({"url": "https://hooks.example.com/", "event_types": []}, "event_types"),
        ({"url": "https://hooks.example.com/"}, "event_types"),
        ({"event_types": [EVENT]}, "url"),
        ({"url": 42, "event_types": [EVENT]}, "url"),
        ({"url": "https://hooks.example.com/", "event_types": [EVENT], "secret": "x"}, "secret"),
    ],
)
def test_invalid_bodies_are_422_with_field_errors(api: Api, body, field):
    token = api.user("planner")
    occ = api.occasion(token)
    error = assert_error(api.client.post(path(occ), json=body, headers=api.auth(token)), 422)
    assert field in [f["field"] for f in error["fields"]]
    assert api.client.get(path(occ), headers=api.auth(token)).json()["endpoints"] == []


def test_malformed_json_is_400(api: Api):
    token = api.user("planner")
    occ = api.occasion(token)
    r = api.client.post(
        path(occ), content=b'{"url": ', headers={**api.auth(token), "content-type": "application/json"}
    )
    assert_error(r, 400)


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/tov",  # not https
        "https://127.0.0.1:8443/tov",
        "https://10.1.2.3/tov",
        "https://192.168.0.10/tov",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/tov",
        "https://localhost/tov",
        "https://printer.local/tov",
    ],
)
def test_private_urls_are_refused_at_creation_unless_allowed(api: Api, strict_client: TestClient, url: str):
    token = api.user("planner")
    occ = api.occasion(token)
    r = strict_client.post(path(occ), json={"url": url, "event_types": [EVENT]}, headers=api.auth(token))
    error = assert_error(r, 422, "invalid_input")
    assert [f["field"] for f in error["fields"]] == ["url"]
    assert strict_client.get(path(occ), headers=api.auth(token)).json()["endpoints"] == []
    # with TOVPLUS_ALLOW_PRIVATE_URLS=true (the test default) the same URL is accepted
    ok = api.client.post(path(occ), json={"url": url, "event_types": [EVENT]}, headers=api.auth(token))
    assert ok.status_code == 201, ok.text


def test_public_https_url_is_accepted_when_private_urls_are_off(api: Api, strict_client: TestClient):
    token = api.user("planner")
    occ = api.occasion(token)
    r = strict_client.post(
        path(occ),
        json={"url": "https://hooks.example.com/tov", "event_types": [EVENT]},
        headers=api.auth(token),
    )
    assert r.status_code == 201, r.text


def test_authorization(api: Api):
    owner = api.user("planner")
    occ = api.occasion(owner)
    body = {"url": "https://hooks.example.com/tov", "event_types": [EVENT]}
    assert_error(api.client.post(path(occ), json=body), 401, "unauthenticated")
    assert_error(api.client.get(path(occ)), 401, "unauthenticated")
    stranger = api.user("planner")
    assert_error(api.client.post(path(occ), json=body, headers=api.auth(stranger)), 404, "not_found")
    assert_error(api.client.get(path(occ), headers=api.auth(stranger)), 404, "not_found")
    assert_error(api.client.get(path("occ_nope"), headers=api.auth(owner)), 404, "not_found")
    admin = api.user("admin")
    assert api.client.post(path(occ), json=body, headers=api.auth(admin)).status_code == 201
    assert len(api.client.get(path(occ), headers=api.auth(admin)).json()["endpoints"]) == 1
    created = api.connect(owner, occ, state="enabled")
    assert created.status_code == 201, created.text
    principal = created.json()["issued_key"]
    assert_error(api.client.post(path(occ), json=body, headers=api.auth(principal)), 403, "forbidden")
    assert_error(api.client.get(path(occ), headers=api.auth(principal)), 403, "forbidden")
    assert len(api.client.get(path(occ), headers=api.auth(owner)).json()["endpoints"]) == 1
