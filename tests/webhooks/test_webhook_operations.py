"""Endpoint operations: the event catalog, rotation with overlap, the message log, resend, recover,
test events, delete. Receivers verify with the official ``standardwebhooks`` library."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import Api, assert_error
from tests.support import event_schemas
from tests.webhooks.test_webhooks_delivery import (
    Receiver,
    add_endpoint,
    delivery,
    emit,
    tuned,
)
from tovplus.db.models import WebhookDelivery, WebhookEndpoint
from tovplus.db.types import utcnow
from tovplus.integrations import standard_webhooks
from tovplus.runtime import Runtime
from tovplus.services import webhooks


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def official_verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except WebhookVerificationError:
        return False
    return True


def ep_path(occasion_id: str, endpoint_id: str, tail: str = "") -> str:
    return f"/v1/occasions/{occasion_id}/webhook-endpoints/{endpoint_id}{tail}"


def log(api: Api, token: str, occasion_id: str, endpoint_id: str, **params: Any) -> list[dict[str, Any]]:
    r = api.client.get(
        ep_path(occasion_id, endpoint_id, "/deliveries"), params=params, headers=api.auth(token)
    )
    assert r.status_code == 200, r.text
    return list(r.json()["deliveries"])


def deliver_all(rt: Runtime) -> None:
    for delivery_id in webhooks.requeue_due_deliveries(rt, utcnow()):
        webhooks.deliver(rt, delivery_id, worker_id="w1")


# --- the catalog --------------------------------------------------------------------------------


def test_event_types_lists_every_contract_type_with_a_schema(api: Api):
    r = api.client.get("/v1/webhooks/event-types")
    assert r.status_code == 200, r.text
    types = {t["type"]: t for t in r.json()["event_types"]}
    assert set(types) == {
        "integration.sync_completed",
        "integration.sync_failed",
        "integration.connection_created",
        "integration.connection_enabled",
        "integration.connection_disabled",
        "integration.connection_revoked",
        "integration.health_changed",
        "integration.records_changed",
        "integration.action_completed",
        "integration.action_failed",
        "webhook.test",
    }
    health = types["integration.health_changed"]["schema"]["properties"]["data"]
    assert {
        "connection_id",
        "integration_key",
        "occasion_id",
        "health",
        "previous_health",
        "health_reasons",
    } <= set(health["required"])
    assert all(t["description"] for t in types.values())


def test_a_payload_off_its_schema_is_caught(runtime: Runtime, api: Api):
    token = api.user("planner")
    occ = api.occasion(token)
    with pytest.raises(AssertionError, match="does not match its schema"), runtime.db.write() as session:
        webhooks.emit_event(
            session,
            occasion_id=occ,
            event_type="integration.records_changed",
            data={"connection_id": "con_x", "integration_key": "x", "occasion_id": occ, "upserted": "three"},
        )
    with pytest.raises(ValueError, match="unknown webhook event type"), runtime.db.write() as session:
        webhooks.emit_event(session, occasion_id=occ, event_type="integration.exploded", data={})


def test_lifecycle_events_are_emitted_and_match_their_schemas(api: Api, runtime: Runtime, receiver: Receiver):
    types = [t for t in webhooks.EVENT_TYPES if ".connection_" in t]
    s = add_endpoint(api, receiver.url, types)
    before = dict(event_schemas.CHECKED)
    r = api.connect(s.token, s.occasion_id, state="enabled")
    assert r.status_code == 201, r.text
    con = r.json()["connection"]["id"]
    assert api.patch(s.token, s.occasion_id, con, state="disabled").status_code == 200
    assert api.patch(s.token, s.occasion_id, con, state="revoked").status_code == 200
    deliver_all(runtime)
    got = [(d["event_type"], d["state"]) for d in reversed(log(api, s.token, s.occasion_id, s.endpoint_id))]
    assert got == [
        ("integration.connection_created", "delivered"),
        ("integration.connection_enabled", "delivered"),
        ("integration.connection_disabled", "delivered"),
        ("integration.connection_revoked", "delivered"),
    ]
    import json

    states = [json.loads(r.body)["data"]["state"] for r in receiver.received]
    assert states == ["enabled", "enabled", "disabled", "revoked"]
    assert all(json.loads(r.body)["data"]["connection_id"] == con for r in receiver.received)
    assert event_schemas.CHECKED.get("integration.connection_revoked", 0) > before.get(
        "integration.connection_revoked", 0
    )


# --- rotation -----------------------------------------------------------------------------------


def test_rotation_signs_with_both_secrets_during_the_overlap_then_only_the_new(
    api: Api, runtime: Runtime, receiver: Receiver
):
    s = add_endpoint(api, receiver.url)
    r = api.client.post(ep_path(s.occasion_id, s.endpoint_id, "/rotate-secret"), headers=api.auth(s.token))
    assert r.status_code == 200, r.text
    new = r.json()["signing_secret"]
    assert new.startswith("whsec_")
    assert new != s.secret
    for _ in range(5):
        [d] = emit(runtime, s.occasion_id)
        webhooks.deliver(runtime, d, worker_id="w1")
    assert len(receiver.received) == 5
    for got in receiver.received:
        assert len(got.headers["webhook-signature"].split(" ")) == 2
        assert official_verifies(s.secret, got.headers, got.body)  # a receiver on the old secret
        assert official_verifies(new, got.headers, got.body)  # a receiver on the new one
        first = got.headers["webhook-signature"].split(" ")[0]
        assert first == webhooks.sign(
            new, got.headers["webhook-id"], int(got.headers["webhook-timestamp"]), got.body
        )

    with runtime.db.write() as session:  # the 24 hours are over
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == s.endpoint_id)
            .values(previous_secret_expires_at=utcnow() - timedelta(seconds=1))
        )
    [d] = emit(runtime, s.occasion_id)
    webhooks.deliver(runtime, d, worker_id="w1")
    last = receiver.received[-1]
    assert len(last.headers["webhook-signature"].split(" ")) == 1
    assert official_verifies(new, last.headers, last.body)
    assert not official_verifies(s.secret, last.headers, last.body)


def test_our_verifier_agrees_with_the_official_library_on_random_messages():
    rng = random.Random(17)
    now = int(utcnow().timestamp())
    for i in range(500):
        secret = standard_webhooks.new_secret()
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300))).decode("latin-1").encode()
        msg_id = f"msg_{rng.getrandbits(64):x}"
        stamp = now - rng.randint(-200, 200)
        headers = webhooks.signed_headers([secret], msg_id, stamp, body)
        if i % 3 == 1:  # tamper with the body
            body = body + b"x"
        elif i % 3 == 2:  # another secret
            secret = standard_webhooks.new_secret()
        official = official_verifies(secret, headers, body)
        try:
            standard_webhooks.verify(
                [standard_webhooks.key_from_secret(secret)],
                headers["webhook-id"],
                headers["webhook-timestamp"],
                headers["webhook-signature"],
                body,
                now=now,
            )
            ours = True
        except standard_webhooks.SignatureInvalid:
            ours = False
        assert ours == official == (i % 3 == 0), i
        # and the package's signature equals the one our own module makes
        ours_sig = standard_webhooks.sign(standard_webhooks.key_from_secret(secret), msg_id, stamp, body)
        assert ours_sig == webhooks.sign(secret, msg_id, stamp, body)


# --- the log, resend, recover, test -------------------------------------------------------------


def test_recover_after_a_two_hour_outage_resends_exactly_the_failed_ones(
    api: Api, runtime: Runtime, receiver: Receiver
):
    rt = tuned(runtime, webhook_retry_delays=())  # one attempt each, then failed
    s = add_endpoint(api, receiver.url)
    [before] = emit(rt, s.occasion_id)
    webhooks.deliver(rt, before, worker_id="w1")  # delivered before the outage
    receiver.script = [(503, {})] * 6
    during = [emit(rt, s.occasion_id)[0] for _ in range(6)]
    for d in during:
        webhooks.deliver(rt, d, worker_id="w1")
    assert [delivery(rt, d).state for d in during] == ["failed"] * 6
    # the outage lasted two hours: move every row's time back instead of waiting
    now = utcnow()
    outage_began = now - timedelta(hours=2, seconds=1)
    with rt.db.write() as session:
        for i, d in enumerate(during):
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == d)
                .values(created_at=now - timedelta(hours=2) + timedelta(minutes=20 * i))
            )
        session.execute(  # the one delivered before the outage is older still
            update(WebhookDelivery)
            .where(WebhookDelivery.id == before)
            .values(created_at=outage_began - timedelta(minutes=5))
        )
    receiver.received.clear()
    r = api.client.post(
        ep_path(s.occasion_id, s.endpoint_id, "/recover"),
        json={"since": outage_began.isoformat()},
        headers=api.auth(s.token),
    )
    assert r.status_code == 202, r.text
    assert r.json() == {"queued": 6}
    deliver_all(rt)
    assert sorted(got.headers["webhook-id"] for got in receiver.received) == sorted(during)
    assert all(official_verifies(s.secret, got.headers, got.body) for got in receiver.received)
    entries = {d["webhook_id"]: d for d in log(api, s.token, s.occasion_id, s.endpoint_id)}
    assert all(entries[d]["state"] == "delivered" for d in during)
    assert [a["status_code"] for a in entries[during[0]]["attempts"]] == [503, 200]
    assert [a["status_code"] for a in entries[before]["attempts"]] == [200]
    failed_only = log(api, s.token, s.occasion_id, s.endpoint_id, status="failed")
    assert failed_only == []


def test_resend_and_test_events_appear_in_the_log(api: Api, runtime: Runtime, receiver: Receiver):
    s = add_endpoint(api, receiver.url)
    [d] = emit(runtime, s.occasion_id)
    webhooks.deliver(runtime, d, worker_id="w1")
    h = api.auth(s.token)
    r = api.client.post(ep_path(s.occasion_id, s.endpoint_id, f"/deliveries/{d}/resend"), headers=h)
    assert r.status_code == 202, r.text
    again = api.client.post(ep_path(s.occasion_id, s.endpoint_id, f"/deliveries/{d}/resend"), headers=h)
    assert_error(again, 409)  # still pending: not queued twice
    t = api.client.post(ep_path(s.occasion_id, s.endpoint_id, "/test"), headers=h)
    assert t.status_code == 202, t.text
    test_id = t.json()["webhook_id"]
    deliver_all(runtime)
    ids = [got.headers["webhook-id"] for got in receiver.received]
    assert ids == [d, d, test_id]
    entries = {e["webhook_id"]: e for e in log(api, s.token, s.occasion_id, s.endpoint_id)}
    assert len(entries[d]["attempts"]) == 2
    assert entries[test_id]["event_type"] == "webhook.test"
    assert entries[test_id]["state"] == "delivered"
    assert entries[d]["attempts"][0]["response_excerpt"] == "status 200"
    missing = api.client.post(ep_path(s.occasion_id, s.endpoint_id, "/deliveries/msg_nope/resend"), headers=h)
    assert_error(missing, 404)


def test_deleted_endpoint_gets_nothing_further_and_its_pending_are_cancelled(
    api: Api, runtime: Runtime, receiver: Receiver
):
    s = add_endpoint(api, receiver.url)
    pending = emit(runtime, s.occasion_id) + emit(runtime, s.occasion_id)
    r = api.client.delete(ep_path(s.occasion_id, s.endpoint_id), headers=api.auth(s.token))
    assert r.status_code == 204, r.text
    assert [delivery(runtime, d).state for d in pending] == ["cancelled", "cancelled"]
    assert emit(runtime, s.occasion_id) == []
    for d in pending:
        webhooks.deliver(runtime, d, worker_id="w1")
    assert receiver.received == []
    listed = api.client.get(f"/v1/occasions/{s.occasion_id}/webhook-endpoints", headers=api.auth(s.token))
    assert listed.json()["endpoints"] == []
    gone = api.client.patch(
        ep_path(s.occasion_id, s.endpoint_id), json={"enabled": True}, headers=api.auth(s.token)
    )
    assert_error(gone, 404)


def test_patch_changes_url_and_types_and_re_enabling_clears_the_failure_record(
    api: Api, runtime: Runtime, receiver: Receiver
):
    s = add_endpoint(api, receiver.url)
    with runtime.db.write() as session:  # as the delivery path leaves an endpoint that failed for days
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == s.endpoint_id)
            .values(
                state="disabled",
                disabled_by="system",
                disabled_reason="every delivery has failed for 5 days",
                failing_since=utcnow() - timedelta(days=6),
            )
        )
    h = api.auth(s.token)
    r = api.client.patch(
        ep_path(s.occasion_id, s.endpoint_id),
        json={"enabled": True, "event_types": ["integration.health_changed"]},
        headers=h,
    )
    assert r.status_code == 200, r.text
    ep = r.json()["endpoint"]
    assert (ep["state"], ep["failing_since"], ep["disabled_reason"]) == ("active", None, None)
    assert ep["event_types"] == ["integration.health_changed"]
    bad = api.client.patch(ep_path(s.occasion_id, s.endpoint_id), json={"event_types": ["nope"]}, headers=h)
    assert_error(bad, 422)
    bad_url = api.client.patch(ep_path(s.occasion_id, s.endpoint_id), json={"url": "ftp://x"}, headers=h)
    assert_error(bad_url, 422)
    off = api.client.patch(ep_path(s.occasion_id, s.endpoint_id), json={"enabled": False}, headers=h)
    assert off.json()["endpoint"]["state"] == "disabled"
    test = api.client.post(ep_path(s.occasion_id, s.endpoint_id, "/test"), headers=h)
    assert_error(test, 409)


def test_other_planners_cannot_touch_the_endpoint(api: Api, receiver: Receiver):
    s = add_endpoint(api, receiver.url)
    other = api.auth(api.user("planner"))
    for method, tail in [
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/rotate-secret"),
        ("POST", "/test"),
        ("GET", "/deliveries"),
    ]:
        r = api.client.request(
            method,
            ep_path(s.occasion_id, s.endpoint_id, tail),
            headers=other,
            json={} if method == "PATCH" else None,
        )
        assert_error(r, 404)
