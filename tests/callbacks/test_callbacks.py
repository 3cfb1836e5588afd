"""The inbound callback route, status by status, for both shipped adapters."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.conftest import Api, assert_error
from tovplus.app import create_app
from tovplus.db.models import Activity, CallbackDelivery, IntegrationKey, SyncedRecord
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.metrics import CALLBACKS
from tovplus.services.callbacks import InboundCallback
from tovplus.settings import Settings

VENUE = {
    "integration_key": "venue_ops",
    "config": {"venue_id": "hall-7"},
    "secrets": {"api_token": "venue-token-0123456789"},
}


def order(order_id: str = "ord-1", status: str = "printed", **extra: Any) -> dict[str, Any]:
    body = {
        "event": "order.status_changed",
        "order_id": order_id,
        "status": status,
        "occurred_at": "2026-11-25T19:40:00Z",
        "tracking_number": None,
    }
    body.update(extra)
    return body


def inbound(conn: Conn, delivery: str, body: dict[str, Any]) -> InboundCallback:
    """What the route hands the service for ``body`` posted to ``conn`` with ``delivery`` as id."""
    raw = json.dumps(body).encode()
    return InboundCallback(
        integration_key=conn.integration_key,
        connection_id=conn.id,
        body=raw,
        payload=json.loads(raw),
        secret=conn.key,
        delivery_id=delivery,
    )


@dataclass
class Conn:
    api: Api
    token: str
    occasion_id: str
    id: str
    key: str
    integration_key: str

    @property
    def url(self) -> str:
        return f"/v1/integrations/callbacks/{self.integration_key}/{self.id}"

    def post(
        self,
        body: Any,
        *,
        key: str | None = "default",
        delivery: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> Any:
        h = dict(headers or {})
        if key is not None:
            h["x-tov-integration-secret"] = self.key if key == "default" else key
        if delivery is not None:
            h["x-tov-delivery-id"] = delivery
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.api.client.post(self.url, content=content, headers=h)

    def patch(self, **body: Any) -> Any:
        return self.api.patch(self.token, self.occasion_id, self.id, **body)

    def records(self) -> list[dict[str, Any]]:
        r = self.api.client.get(
            f"/v1/occasions/{self.occasion_id}/integrations/connections/{self.id}/records",
            headers=self.api.auth(self.token),
        )
        assert r.status_code == 200, r.text
        return list(r.json()["records"])

    def activity(self, kind: str | None = None) -> list[dict[str, Any]]:
        r = self.api.client.get(
            f"/v1/occasions/{self.occasion_id}/integrations/activity",
            params={"connection_id": self.id, "limit": 200},
            headers=self.api.auth(self.token),
        )
        assert r.status_code == 200, r.text
        return [a for a in r.json()["activity"] if kind is None or a["kind"] == kind]


def make_conn(api: Api, state: str = "enabled", **body: Any) -> Conn:
    token = api.user("planner")
    occasion_id = api.occasion(token)
    r = api.connect(token, occasion_id, state=state, **body)
    assert r.status_code == 201, r.text
    data = r.json()
    c = data["connection"]
    return Conn(api, token, occasion_id, c["id"], data["issued_key"], c["integration_key"])


@pytest.fixture
def printing(api: Api) -> Conn:
    return make_conn(api)


def count(runtime: Runtime, model: Any, **where: Any) -> int:
    with runtime.db.read() as s:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return int(s.scalar(q) or 0)


def metric(integration_key: str, status: str) -> float:
    return float(CALLBACKS.labels(integration_key, status)._value.get())


# --- accepted, duplicate ---------------------------------------------------------------------


def test_accepted_callback_stores_record_and_activity(printing: Conn, runtime: Runtime):
    before = metric("printing_partner", "202")
    r = printing.post(order(tracking_number="1Z999"), delivery="d-1")
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "accepted"
    assert body["activity_id"].startswith("act_")
    assert metric("printing_partner", "202") == before + 1

    [record] = printing.records()
    assert record["kind"] == "print_order"
    assert record["external_id"] == "ord-1"
    assert record["data"] == {
        "order_id": "ord-1",
        "status": "printed",
        "tracking_number": "1Z999",
        "updated_at": "2026-11-25T19:40:00Z",
    }
    [entry] = printing.activity("callback.received")
    assert entry["id"] == body["activity_id"]
    assert entry["actor"] == f"integration:{printing.id}"
    assert entry["integration_key"] == "printing_partner"
    assert entry["occasion_id"] == printing.occasion_id
    assert "ord-1" in entry["summary"]
    assert "printed" in entry["summary"]
    assert entry["details"]["delivery_id"] == "d-1"
    assert printing.key not in json.dumps(entry)


def test_same_delivery_id_is_a_duplicate_with_no_second_effect(printing: Conn, runtime: Runtime):
    first = printing.post(order(status="printed"), delivery="same")
    assert first.status_code == 202
    again = printing.post(order(status="shipped"), delivery="same")
    assert again.status_code == 200, again.text
    assert again.json() == {"status": "duplicate", "activity_id": first.json()["activity_id"]}
    assert printing.records()[0]["data"]["status"] == "printed"
    assert len(printing.activity("callback.received")) == 1
    assert count(runtime, CallbackDelivery, connection_id=printing.id) == 1
    # another delivery id is a new callback
    third = printing.post(order(status="shipped"), delivery="other")
    assert third.status_code == 202
    assert printing.records()[0]["data"]["status"] == "shipped"


def test_delivery_ids_are_per_connection(api: Api):
    a, b = make_conn(api), make_conn(api)
    assert a.post(order(), delivery="shared-id").status_code == 202
    assert b.post(order(), delivery="shared-id").status_code == 202


def test_without_delivery_id_every_callback_counts(printing: Conn):
    assert printing.post(order(status="a")).status_code == 202
    assert printing.post(order(status="b")).status_code == 202
    assert len(printing.activity("callback.received")) == 2
    assert printing.records()[0]["data"]["status"] == "b"


def test_older_status_change_does_not_regress_the_record(printing: Conn):
    assert printing.post(order(status="shipped", occurred_at="2026-11-25T20:00:00Z")).status_code == 202
    late = printing.post(order(status="printed", occurred_at="2026-11-25T19:00:00Z"))
    assert late.status_code == 202  # accepted and logged, but the newer state stays
    [record] = printing.records()
    assert record["data"]["status"] == "shipped"
    assert len(printing.activity("callback.received")) == 2


def test_repeat_of_accepted_delivery_stays_duplicate_even_if_payload_now_invalid(printing: Conn):
    first = printing.post(order(), delivery="d-9")
    again = printing.post({"event": "nonsense"}, delivery="d-9")
    assert again.status_code == 200
    assert again.json()["activity_id"] == first.json()["activity_id"]


def test_key_use_updates_last_used(printing: Conn, runtime: Runtime):
    with runtime.db.read() as s:
        assert s.scalar(select(IntegrationKey.last_used_at)) is None
    assert printing.post(order()).status_code == 202
    with runtime.db.read() as s:
        assert s.scalar(select(IntegrationKey.last_used_at)) is not None


# --- venue_ops -----------------------------------------------------------------------------------


def test_venue_room_assignment(api: Api):
    venue = make_conn(api, **VENUE)
    event_id = api.event(venue.token, venue.occasion_id)
    r = venue.post({"event": "room.assigned", "event_id": event_id, "room": "Blue Hall"}, delivery="v1")
    assert r.status_code == 202, r.text
    [record] = venue.records()
    assert record["kind"] == "room_assignment"
    assert record["external_id"] == event_id
    assert record["data"] == {"event_id": event_id, "room": "Blue Hall"}
    [entry] = venue.activity("callback.received")
    assert "Blue Hall" in entry["summary"]


def test_venue_event_must_belong_to_the_connections_occasion(api: Api):
    venue = make_conn(api, **VENUE)
    other_occasion = api.occasion(venue.token, "Another")
    foreign_event = api.event(venue.token, other_occasion)
    for event_id in (foreign_event, "evt_does_not_exist", "x" * 300):
        r = venue.post({"event": "room.assigned", "event_id": event_id, "room": "Blue Hall"})
        err = assert_error(r, 422, "callback_rejected")
        assert [f["field"] for f in err["fields"]] == ["payload.event_id"], err
    assert venue.records() == []


VENUE_REJECTS: list[tuple[Any, set[str]]] = [
    ({"event": "room.assigned", "room": "A"}, {"payload.event_id"}),
    ({"event": "room.moved", "event_id": "e", "room": "A"}, {"payload.event"}),
    ({"event": "room.assigned", "event_id": 5, "room": ""}, {"payload.event_id", "payload.room"}),
    ({"event": "room.assigned", "event_id": "e", "room": "A", "extra": 1}, {"payload.extra"}),
    ([1, 2], {"payload"}),
]


def test_venue_rejects_other_shapes(api: Api, runtime: Runtime):
    venue = make_conn(api, **VENUE)
    for payload, fields in VENUE_REJECTS:
        err = assert_error(venue.post(payload), 422, "callback_rejected")
        assert fields <= {f["field"] for f in err["fields"]}, (payload, err)
    assert count(runtime, SyncedRecord) == 0


# --- 422 printing ---------------------------------------------------------------------------------


PRINTING_REJECTS: list[tuple[Any, set[str]]] = [
    ({}, {"payload.event", "payload.order_id", "payload.status", "payload.occurred_at"}),
    (order(event="order.created"), {"payload.event"}),
    (order(occurred_at="yesterday"), {"payload.occurred_at"}),
    (order(occurred_at="2026-11-25T19:40:00"), {"payload.occurred_at"}),
    (order(order_id=""), {"payload.order_id"}),
    (order(order_id="x" * 201), {"payload.order_id"}),
    (order(status=7), {"payload.status"}),
    (order(tracking_number=["a"]), {"payload.tracking_number"}),
    (order(surprise=True), {"payload.surprise"}),
    ("just a string", {"payload"}),
    (None, {"payload"}),
    (order(order_id="a\u0000b"), {"payload"}),
    (order(status="\ud800"), {"payload"}),
]


def test_printing_rejects_other_shapes_with_field_errors(printing: Conn, runtime: Runtime):
    before = metric("printing_partner", "422")
    for payload, fields in PRINTING_REJECTS:
        err = assert_error(printing.post(payload, delivery="bad"), 422, "callback_rejected")
        assert fields <= {f["field"] for f in err["fields"]}, (payload, err)
    assert count(runtime, SyncedRecord) == 0
    assert count(runtime, CallbackDelivery) == 0
    assert metric("printing_partner", "422") == before + len(PRINTING_REJECTS)


def test_overlong_or_unprintable_delivery_id_is_422(printing: Conn):
    for bad in ("d" * 201, "d\x7f1", "d\xa0"):
        err = assert_error(printing.post(order(), headers={"x-tov-delivery-id": bad.encode("latin-1")}), 422)
        assert err["fields"][0]["field"] == "headers.x-tov-delivery-id"


# --- 404 ------------------------------------------------------------------------------------------


def test_unknown_connection_and_mismatched_adapter_are_404(api: Api, printing: Conn):
    h = {"x-tov-integration-secret": printing.key}
    client = api.client
    body = json.dumps(order())
    for url in (
        f"/v1/integrations/callbacks/printing_partner/con_{uuid.uuid4().hex[:20]}",
        f"/v1/integrations/callbacks/venue_ops/{printing.id}",
        f"/v1/integrations/callbacks/no_such_adapter/{printing.id}",
        f"/v1/integrations/callbacks/printing_partner/{'x' * 500}",
        f"/v1/integrations/callbacks/printing_partner/{printing.id}%00",
        "/v1/integrations/callbacks/printing_partner/%F0%9F%98%80",
        "/v1/integrations/callbacks/printing_partner/con_a%27%20OR%201%3D1",
    ):
        assert_error(client.post(url, content=body, headers=h), 404, "not_found")
    # 404 wins over a missing secret, and no rejection is logged for unknown targets
    assert_error(client.post(f"/v1/integrations/callbacks/venue_ops/{printing.id}", content=body), 404)
    assert printing.activity("callback.rejected") == []


# --- 401 ------------------------------------------------------------------------------------------


def test_missing_or_wrong_secret_is_401_with_rejected_activity(api: Api, printing: Conn, runtime: Runtime):
    other = make_conn(api)
    assert_error(printing.post(order(), key=None), 401, "unauthenticated")
    assert_error(printing.post(order(), key="tov_ikdeadbeef_nope"), 401, "unauthenticated")
    assert_error(printing.post(order(), key=printing.key[:-2] + "xx"), 401)
    assert_error(printing.post(order(), key=other.key), 401)  # another connection's key
    assert_error(printing.post(order(), key=""), 401)
    assert count(runtime, SyncedRecord) == 0
    rejected = printing.activity("callback.rejected")
    assert rejected, "a rejected secret must leave an activity entry"
    for entry in rejected:
        assert printing.key not in json.dumps(entry)
        assert other.key not in json.dumps(entry)
    assert {e["details"]["reason"] for e in rejected} <= {"missing_secret", "wrong_secret"}


def test_rejected_activity_is_rate_limited(printing: Conn, runtime: Runtime):
    for _ in range(25):
        assert_error(printing.post(order(), key="tov_ikdeadbeef_wrong"), 401)
    entries = count(runtime, Activity, kind="callback.rejected", connection_id=printing.id)
    assert 1 <= entries <= 3


def test_401_wins_over_409_and_422(api: Api):
    draft = make_conn(api, state="draft")
    assert_error(draft.post({"junk": 1}, key="tov_ikdeadbeef_wrong"), 401)


def test_rotated_away_key_is_401_and_new_key_works(printing: Conn):
    assert printing.post(order()).status_code == 202
    r = printing.patch(rotate_key=True)
    assert r.status_code == 200, r.text
    new_key = r.json()["issued_key"]
    assert_error(printing.post(order()), 401)
    assert printing.post(order(), key=new_key).status_code == 202


def test_revoked_connection_key_is_401(printing: Conn):
    assert printing.patch(state="revoked").status_code == 200
    assert_error(printing.post(order()), 401)


# --- 409 ------------------------------------------------------------------------------------------


def test_draft_and_disabled_connections_are_409(api: Api, runtime: Runtime):
    draft = make_conn(api, state="draft")
    assert_error(draft.post(order()), 409)
    enabled = make_conn(api)
    assert enabled.patch(state="disabled").status_code == 200
    assert_error(enabled.post(order()), 409)
    assert_error(enabled.post({"junk": 1}), 409)  # 409 comes before the payload check
    assert enabled.patch(state="enabled").status_code == 200
    assert enabled.post(order()).status_code == 202
    assert count(runtime, SyncedRecord) == 1


# --- 400, 413 -------------------------------------------------------------------------------------


MALFORMED = [b"", b"   ", b"{", b'{"a": 1,}', b"\xff\xfe\x00garbage", b"[" * 5000, b'{"a": NaN}', b"1" * 5000]


def test_malformed_json_is_400(printing: Conn, runtime: Runtime):
    for body in MALFORMED:
        assert_error(printing.post(body), 400, "malformed_json")
    assert count(runtime, Activity, kind="callback.received") == 0


def test_body_over_the_limit_is_413_by_header_and_while_streaming(printing: Conn, runtime: Runtime):
    limit = runtime.settings.max_callback_body_bytes
    big = json.dumps(order(status="x" * limit)).encode()
    assert_error(printing.post(big), 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while reading
        for _ in range(limit // 1024 + 4):
            yield b" " * 1024

    r = printing.api.client.post(
        printing.url, content=chunks(), headers={"x-tov-integration-secret": printing.key}
    )
    assert_error(r, 413, "payload_too_large")
    assert count(runtime, SyncedRecord) == 0


def test_body_just_under_the_limit_is_read(printing: Conn, runtime: Runtime):
    limit = runtime.settings.max_callback_body_bytes
    payload = json.dumps(order()).encode()
    padded = payload[:-1] + b" " * (limit - len(payload)) + b"}"
    assert len(padded) == limit
    assert printing.post(padded).status_code == 202


# --- 429 ------------------------------------------------------------------------------------------


@pytest.fixture
def slow_client(settings: Settings) -> Iterator[tuple[TestClient, Runtime]]:
    rt = build_runtime(settings.model_copy(update={"callback_rate_per_minute": 3}))
    with TestClient(create_app(rt), raise_server_exceptions=False) as c:
        yield c, rt
    rt.close()


def test_rate_limit_is_429_with_retry_after(slow_client: tuple[TestClient, Runtime]):
    client, rt = slow_client
    api = Api(client, rt)
    conn, other = make_conn(api), make_conn(api)
    statuses = [conn.post(order(), delivery=f"r{i}").status_code for i in range(5)]
    assert statuses == [202, 202, 202, 429, 429]
    r = conn.post(order(), delivery="r9")
    err = assert_error(r, 429, "rate_limited")
    assert err["message"]
    assert 1 <= int(r.headers["Retry-After"]) <= 20
    assert other.post(order()).status_code == 202  # per connection
    # bad secrets do not spend the connection's budget
    for _ in range(5):
        assert_error(other.post(order(), key="tov_ikdeadbeef_x"), 401)
    assert other.post(order()).status_code == 202
    assert count(rt, CallbackDelivery, connection_id=conn.id) == 3


# --- 503 ------------------------------------------------------------------------------------------


def test_database_failure_is_503_and_nothing_is_half_written(printing: Conn, runtime: Runtime):
    from sqlalchemy.exc import OperationalError

    assert printing.post(order(), delivery="ok-1").status_code == 202
    service = printing.api.client.app.state.callback_service  # type: ignore[attr-defined]
    real = service.writer._commit_batch

    def broken(jobs: Any) -> Any:
        with runtime.db.write() as session:
            service._process(session, jobs)  # writes, then the commit "fails": all rolled back
            raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    service.writer._commit_batch = broken
    try:
        r = printing.post(order(status="lost"), delivery="ok-2")
    finally:
        service.writer._commit_batch = real
    err = assert_error(r, 503, "unavailable")
    assert r.headers["Retry-After"] == "1"
    assert "disk" not in err["message"]
    assert count(runtime, CallbackDelivery) == 1
    assert printing.records()[0]["data"]["status"] == "printed"
    # the partner's retry of the same delivery is then processed normally
    assert printing.post(order(status="shipped"), delivery="ok-2").status_code == 202


# --- no input gives a 5xx -----------------------------------------------------------------------


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_order_like = st.fixed_dictionaries(
    {
        "event": st.sampled_from(["order.status_changed", "room.assigned"]) | st.text(max_size=5),
        "order_id": st.text(max_size=30) | _json,
        "status": st.text(max_size=30) | _json,
        "occurred_at": st.sampled_from(["2026-11-25T19:40:00Z", "2026-11-25", ""]) | st.text(max_size=30),
    },
    optional={"tracking_number": _json, "event_id": st.text(max_size=45), "room": _json},
)


@hsettings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.one_of(
        st.binary(max_size=200),
        _json.map(lambda v: json.dumps(v).encode()),
        _order_like.map(lambda v: json.dumps(v).encode()),
    ),
    adapter=st.sampled_from(["printing", "venue"]),
    key=st.sampled_from(["right", "wrong", "none"]),
    delivery=st.none() | st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=210),
)
def test_no_input_gives_a_server_error(
    fuzz_conns: dict[str, Conn], body: bytes, adapter: str, key: str, delivery: str | None
):
    conn = fuzz_conns[adapter]
    headers = {} if delivery is None else {"x-tov-delivery-id": delivery.encode("latin-1")}
    secret = {"right": "default", "wrong": "tov_ikdeadbeef_wrong", "none": None}[key]
    r = conn.post(body, key=secret, headers=headers)
    assert r.status_code in {200, 202, 400, 401, 422}, r.text
    if r.status_code >= 400:
        assert_error(r, r.status_code)
    else:
        assert set(r.json()) == {"status", "activity_id"}


@pytest.fixture
def fuzz_conns(api: Api) -> dict[str, Conn]:
    return {"printing": make_conn(api), "venue": make_conn(api, **VENUE)}
