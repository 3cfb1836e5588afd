"""Occasions, events and guests over HTTP: status codes, envelopes and pagination per the contract."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import Api, assert_error
from tovplus.db.models import Event, Guest, Occasion
from tovplus.runtime import Runtime

RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def count(runtime: Runtime, model: type[Any]) -> int:
    with runtime.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --- POST /v1/occasions ------------------------------------------------------------------------------


def test_create_occasion_is_201_and_the_creator_plans_it(api: Api):
    token = api.user("planner")
    r = api.client.post(
        "/v1/occasions",
        json={"name": "  Olena & Taras  ", "starts_on": "2027-06-12"},
        headers=api.auth(token),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"occasion"}
    occasion = body["occasion"]
    assert {"id", "name", "starts_on", "created_at"} <= set(occasion)
    assert occasion["name"] == "Olena & Taras"
    assert occasion["starts_on"] == "2027-06-12"
    assert RFC3339_UTC.fullmatch(occasion["created_at"])
    r = api.client.get(f"/v1/occasions/{occasion['id']}", headers=api.auth(token))
    assert r.status_code == 200
    assert r.json() == {"occasion": occasion}


def test_admins_may_create_occasions_too(api: Api):
    admin = api.user("admin")
    occasion_id = api.occasion(admin)
    assert api.client.get(f"/v1/occasions/{occasion_id}", headers=api.auth(admin)).status_code == 200


NO_VALID_CREDENTIALS: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer tovu_not-a-real-token"},
    {"Authorization": "Bearer "},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "tovu_missing_scheme"},
    {"Authorization": "Bearer tov_ik0000_notarealkeynotarealkey"},
]


def test_create_occasion_without_valid_credentials_is_401(api: Api, runtime: Runtime):
    for headers in NO_VALID_CREDENTIALS:
        r = api.client.post("/v1/occasions", json={"name": "x", "starts_on": "2027-01-01"}, headers=headers)
        assert_error(r, 401, "unauthenticated")
        assert r.headers.get("www-authenticate") == "Bearer", headers
    assert count(runtime, Occasion) == 0


INVALID_OCCASIONS: list[tuple[Any, str | None]] = [
    ({"starts_on": "2027-06-12"}, "name"),
    ({"name": "", "starts_on": "2027-06-12"}, "name"),
    ({"name": "   ", "starts_on": "2027-06-12"}, "name"),
    ({"name": "x" * 201, "starts_on": "2027-06-12"}, "name"),
    ({"name": 42, "starts_on": "2027-06-12"}, "name"),
    ({"name": None, "starts_on": "2027-06-12"}, "name"),
    ({"name": "Wedding"}, "starts_on"),
    ({"name": "Wedding", "starts_on": "2027-02-30"}, "starts_on"),
    ({"name": "Wedding", "starts_on": "12/06/2027"}, "starts_on"),
    ({"name": "Wedding", "starts_on": 20270612}, "starts_on"),
    ({"name": "Wedding", "starts_on": None}, "starts_on"),
    ({"name": "Wedding", "starts_on": "2027-06-12", "colour": "blue"}, "colour"),
    ({"name": "Wed\u0000ding", "starts_on": "2027-06-12"}, None),
    ({}, None),
    ([], None),
    ("Wedding", None),
]


def test_create_occasion_with_invalid_input_is_422_and_creates_nothing(api: Api, runtime: Runtime):
    token = api.user("planner")
    for body, field in INVALID_OCCASIONS:
        r = api.client.post("/v1/occasions", json=body, headers=api.auth(token))
        error = assert_error(r, 422, "invalid_input")
        assert error["fields"], error
        for issue in error["fields"]:
            assert set(issue) == {"field", "code", "message"}
            assert not issue["message"].startswith("Value error")
        if field is not None:
            assert field in {issue["field"] for issue in error["fields"]}, (body, error)
    assert count(runtime, Occasion) == 0


def test_create_occasion_with_malformed_json_is_400(api: Api):
    token = api.user("planner")
    r = api.client.post(
        "/v1/occasions",
        content=b"{name: 'x'}",
        headers={**api.auth(token), "content-type": "application/json"},
    )
    assert_error(r, 400, "malformed_json")


def test_integration_keys_cannot_create_occasions_but_read_inside_their_scope(api: Api, runtime: Runtime):
    planner = api.user("planner")
    occasion_id = api.occasion(planner)
    other_occasion = api.occasion(planner, "Another")
    r = api.connect(planner, occasion_id, state="enabled")
    assert r.status_code == 201, r.text
    key = r.json()["issued_key"]
    r = api.client.post("/v1/occasions", json={"name": "x", "starts_on": "2027-01-01"}, headers=api.auth(key))
    assert_error(r, 403, "forbidden")
    assert count(runtime, Occasion) == 2
    assert api.client.get(f"/v1/occasions/{occasion_id}", headers=api.auth(key)).status_code == 200
    assert_error(api.client.get(f"/v1/occasions/{other_occasion}", headers=api.auth(key)), 403, "forbidden")


# --- GET /v1/occasions/{id} --------------------------------------------------------------------------


def test_get_occasion_is_visible_to_its_planner_and_admins_only(api: Api):
    planner = api.user("planner")
    stranger = api.user("planner")
    admin = api.user("admin")
    occasion_id = api.occasion(planner)
    path = f"/v1/occasions/{occasion_id}"

    mine = api.client.get(path, headers=api.auth(planner))
    assert mine.status_code == 200
    assert mine.json()["occasion"]["id"] == occasion_id
    assert api.client.get(path, headers=api.auth(admin)).json() == mine.json()

    hidden = assert_error(api.client.get(path, headers=api.auth(stranger)), 404, "not_found")
    unknown = assert_error(api.client.get("/v1/occasions/occ_doesnotexist", headers=api.auth(stranger)), 404)
    assert hidden == unknown  # a stranger cannot tell "not yours" from "does not exist"
    assert_error(api.client.get(path), 401, "unauthenticated")


def test_get_occasion_with_odd_ids_is_404(api: Api):
    token = api.user("admin")
    for occasion_id in ["%00", "x" * 300, "occ_%2F..%2F", "%F0%9F%8E%89", "'%20OR%201=1--", "%E2%80%AE"]:
        assert_error(
            api.client.get(f"/v1/occasions/{occasion_id}", headers=api.auth(token)), 404, "not_found"
        )


# --- events and guests ------------------------------------------------------------------------------------


def test_create_event_normalises_starts_at_to_utc(api: Api):
    token = api.user("planner")
    occasion_id = api.occasion(token)
    path = f"/v1/occasions/{occasion_id}/events"
    r = api.client.post(
        path, json={"name": "Dinner", "starts_at": "2027-06-12T18:00:00+02:00"}, headers=api.auth(token)
    )
    assert r.status_code == 201, r.text
    event = r.json()["event"]
    assert event["starts_at"] == "2027-06-12T16:00:00Z"
    assert event["occasion_id"] == occasion_id
    assert event["name"] == "Dinner"
    assert RFC3339_UTC.fullmatch(event["created_at"])
    r = api.client.post(path, json={"name": "Party"}, headers=api.auth(token))
    assert r.status_code == 201
    assert r.json()["event"]["starts_at"] is None


INVALID_EVENTS: list[tuple[dict[str, Any], str]] = [
    ({}, "name"),
    ({"name": " "}, "name"),
    ({"name": "Dinner", "starts_at": "tomorrow"}, "starts_at"),
    ({"name": "Dinner", "starts_at": 1_800_000_000}, "starts_at"),
    ({"name": "Dinner", "starts_at": "0001-01-01T00:00:00+14:00"}, "starts_at"),
    ({"name": "Dinner", "room": "A"}, "room"),
]
INVALID_GUESTS: list[tuple[dict[str, Any], str]] = [
    ({}, "name"),
    ({"name": "\t"}, "name"),
    ({"name": "Ola", "email": "not an email"}, "email"),
    ({"name": "Ola", "email": "a@b"}, "email"),
    ({"name": "Ola", "email": 5}, "email"),
    ({"name": "Ola", "email": "x" * 330 + "@example.com"}, "email"),
]


@pytest.mark.parametrize("kind", ["events", "guests"])
def test_create_event_or_guest_with_invalid_input_is_422_and_creates_nothing(
    api: Api, runtime: Runtime, kind: str
):
    token = api.user("planner")
    occasion_id = api.occasion(token)
    for body, field in INVALID_EVENTS if kind == "events" else INVALID_GUESTS:
        r = api.client.post(f"/v1/occasions/{occasion_id}/{kind}", json=body, headers=api.auth(token))
        error = assert_error(r, 422, "invalid_input")
        assert field in {issue["field"] for issue in error["fields"]}, (body, error)
    assert count(runtime, Event if kind == "events" else Guest) == 0


@pytest.mark.parametrize(
    ("body", "stored"),
    [
        ({"name": "Ola"}, None),
        ({"name": "Ola", "email": "Ola.Nordmann@Example.com"}, "Ola.Nordmann@Example.com"),
        ({"name": "Ola", "email": ""}, None),
    ],
)
def test_create_guest(api: Api, body: dict[str, Any], stored: str | None):
    token = api.user("planner")
    occasion_id = api.occasion(token)
    r = api.client.post(f"/v1/occasions/{occasion_id}/guests", json=body, headers=api.auth(token))
    assert r.status_code == 201, r.text
    guest = r.json()["guest"]
    assert (guest["name"], guest["email"], guest["occasion_id"]) == ("Ola", stored, occasion_id)
    assert RFC3339_UTC.fullmatch(guest["created_at"])


@pytest.mark.parametrize("kind", ["events", "guests"])
def test_events_and_guests_follow_the_occasion_visibility(api: Api, runtime: Runtime, kind: str):
    planner = api.user("planner")
    stranger = api.user("planner")
    admin = api.user("admin")
    occasion_id = api.occasion(planner)
    path = f"/v1/occasions/{occasion_id}/{kind}"

    assert_error(api.client.post(path, json={"name": "Sneaky"}, headers=api.auth(stranger)), 404, "not_found")
    assert_error(api.client.get(path, headers=api.auth(stranger)), 404, "not_found")
    assert_error(api.client.post(path, json={"name": "x"}), 401, "unauthenticated")
    assert_error(api.client.get(path), 401, "unauthenticated")
    assert_error(
        api.client.get(f"/v1/occasions/occ_unknown/{kind}", headers=api.auth(admin)), 404, "not_found"
    )
    assert count(runtime, Event if kind == "events" else Guest) == 0

    assert api.client.post(path, json={"name": "By the admin"}, headers=api.auth(admin)).status_code == 201
    for token in (planner, admin):
        r = api.client.get(path, headers=api.auth(token))
        assert r.status_code == 200
        assert [item["name"] for item in r.json()[kind]] == ["By the admin"]


# --- pagination -------------------------------------------------------------------------------------------


@pytest.fixture(params=["events", "guests"])
def listing(request: pytest.FixtureRequest, api: Api) -> dict[str, Any]:
    """An occasion with five events (or guests), another occasion with one, and the planner's token."""
    kind = request.param
    token = api.user("planner")
    occasion_id = api.occasion(token)
    other = api.occasion(token, "Other")
    ids = []
    for i in range(5):
        r = api.client.post(
            f"/v1/occasions/{occasion_id}/{kind}", json={"name": f"n{i}"}, headers=api.auth(token)
        )
        assert r.status_code == 201
        ids.append(r.json()[kind[:-1]]["id"])
    api.client.post(f"/v1/occasions/{other}/{kind}", json={"name": "elsewhere"}, headers=api.auth(token))
    return {
        "kind": kind,
        "path": f"/v1/occasions/{occasion_id}/{kind}",
        "ids": ids,
        "headers": api.auth(token),
    }


def test_default_page_holds_everything_in_creation_order(api: Api, listing: dict[str, Any]):
    r = api.client.get(listing["path"], headers=listing["headers"])
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {listing["kind"], "next_cursor"}
    assert [item["id"] for item in body[listing["kind"]]] == listing["ids"]
    assert body["next_cursor"] is None


def test_next_cursor_walks_every_item_once(api: Api, listing: dict[str, Any]):
    seen: list[str] = []
    sizes: list[int] = []
    params: dict[str, Any] = {"limit": 2}
    for _ in range(10):
        r = api.client.get(listing["path"], params=params, headers=listing["headers"])
        assert r.status_code == 200, r.text
        page = r.json()
        sizes.append(len(page[listing["kind"]]))
        seen += [item["id"] for item in page[listing["kind"]]]
        if page["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": page["next_cursor"]}
    assert sizes == [2, 2, 1]
    assert seen == listing["ids"]


def test_a_limit_equal_to_the_rest_ends_without_an_empty_page(api: Api, listing: dict[str, Any]):
    r = api.client.get(listing["path"], params={"limit": 5}, headers=listing["headers"])
    assert len(r.json()[listing["kind"]]) == 5
    assert r.json()["next_cursor"] is None
    r = api.client.get(listing["path"], params={"limit": 4}, headers=listing["headers"])
    last = api.client.get(
        listing["path"], params={"limit": 4, "cursor": r.json()["next_cursor"]}, headers=listing["headers"]
    ).json()
    assert [item["id"] for item in last[listing["kind"]]] == listing["ids"][4:]
    assert last["next_cursor"] is None


def test_limit_bounds_that_are_allowed(api: Api, listing: dict[str, Any]):
    for limit in ("1", "200"):
        r = api.client.get(listing["path"], params={"limit": limit}, headers=listing["headers"])
        assert r.status_code == 200
        assert len(r.json()[listing["kind"]]) == min(int(limit), 5)


def test_limit_out_of_bounds_is_422(api: Api, listing: dict[str, Any]):
    for limit in ("0", "201", "-1", "abc", "1.5", "99999999999999999999"):
        r = api.client.get(listing["path"], params={"limit": limit}, headers=listing["headers"])
        error = assert_error(r, 422, "invalid_input")
        assert [issue["field"] for issue in error["fields"]] == ["limit"], limit


BAD_CURSORS = [
    "garbage",
    "!!!",
    b64(b"not json"),
    b64(b'{"after": 5}'),
    b64(b'["after"]'),
    b64(b'{"before": "evt_x"}'),
    b64(b'{"after": "' + b"x" * 100 + b'"}'),
    "x" * 201,
]


def test_a_bad_cursor_is_422(api: Api, listing: dict[str, Any]):
    for cursor in BAD_CURSORS:
        r = api.client.get(listing["path"], params={"cursor": cursor}, headers=listing["headers"])
        error = assert_error(r, 422, "invalid_input")
        assert [issue["field"] for issue in error["fields"]] == ["cursor"], cursor


def test_an_empty_cursor_means_the_first_page(api: Api, listing: dict[str, Any]):
    r = api.client.get(listing["path"], params={"cursor": "", "limit": 1}, headers=listing["headers"])
    assert r.status_code == 200
    assert [item["id"] for item in r.json()[listing["kind"]]] == listing["ids"][:1]


# --- the envelope's safety net ----------------------------------------------------------------------------


def test_a_value_the_database_refuses_is_422_not_500(runtime: Runtime):
    """Request models refuse unstorable input first; a DataError slipping past is still the input's fault."""
    from fastapi.testclient import TestClient
    from sqlalchemy.exc import DataError

    from tovplus.app import create_app

    app = create_app(runtime)

    def refuse() -> None:
        raise DataError(
            "INSERT ...", {}, ValueError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        )

    app.add_api_route("/test-only/data-error", refuse, methods=["POST"])
    with TestClient(app, raise_server_exceptions=False) as client:
        error = assert_error(client.post("/test-only/data-error"), 422, "invalid_input")
    assert "NUL" not in error["message"]  # driver details stay in the log


def test_a_chunked_body_over_the_limit_is_413_while_it_streams(api: Api, runtime: Runtime):
    token = api.user("planner")

    def chunks() -> Any:
        yield b'{"name": "'
        for _ in range(40):  # 2.5 MiB, no content-length
            yield b"x" * 65536
        yield b'", "starts_on": "2027-01-01"}'

    r = api.client.post(
        "/v1/occasions", content=chunks(), headers={**api.auth(token), "content-type": "application/json"}
    )
    assert_error(r, 413, "payload_too_large")
    assert count(runtime, Occasion) == 0
