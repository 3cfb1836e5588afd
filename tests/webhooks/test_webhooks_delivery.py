"""Outbound webhook deliveries over real HTTP to a receiver on a loopback port.

The receiver checks nothing itself; each test verifies what arrived with an
independent Standard Webhooks implementation (:func:`verify`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.conftest import Api
from tests.support.loopback import LoopbackServer
from tovplus.app import create_app
from tovplus.db.models import Activity, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tovplus.db.types import utcnow
from tovplus.runtime import Runtime
from tovplus.runtime.metrics import WEBHOOK_DELIVERIES
from tovplus.services import webhooks

EVENT = "integration.sync_completed"

# --- a tiny receiver -----------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that answers from a script (then 200) and keeps what it got."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True
            wbufsize = 65536  # one write per response

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    status, headers = receiver.script.pop(0) if receiver.script else (200, {})
                if receiver.delay:
                    time.sleep(receiver.delay)
                reply = f"status {status}".encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.loopback = LoopbackServer(Handler, path="/hooks/tov", poll_interval=0.02)

    @property
    def port(self) -> int:
        return self.loopback.port

    @property
    def url(self) -> str:
        return self.loopback.url

    def stop(self) -> None:
        self.loopback.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def verify(signing_secret: str, headers: dict[str, str], body: bytes, *, tolerance: int = 300) -> bool:
    """Standard Webhooks verification, written from the spec (not using the service's code)."""
    assert signing_secret.startswith("whsec_")
    key = base64.b64decode(signing_secret[len("whsec_") :])
    msg_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(stamp)) > tolerance:
        return False
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{stamp}.{body.decode()}".encode(), hashlib.sha256).digest()
    ).decode()
    for candidate in headers["webhook-signature"].split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


# --- helpers -------------------------------------------------------------------------------------


def tuned(runtime: Runtime, **changes: Any) -> Runtime:
    """The same database and keyring with other settings (short retry delays, private URLs off)."""
    return Runtime(
        settings=runtime.settings.model_copy(update=changes),
        db=runtime.db,
        registry=runtime.registry,
        keyring=runtime.keyring,
    )


@dataclass
class Setup:
    token: str
    occasion_id: str
    endpoint_id: str
    secret: str


def add_endpoint(api: Api, url: str, event_types: list[str] | None = None, token: str | None = None) -> Setup:
    token = token or api.user("planner")
    occasion_id = api.occasion(token)
    r = api.client.post(
        f"/v1/occasions/{occasion_id}/webhook-endpoints",
        json={"url": url, "event_types": event_types or [EVENT]},
        headers=api.auth(token),
    )
    assert r.status_code == 201, r.text
    return Setup(token, occasion_id, r.json()["endpoint"]["id"], r.json()["signing_secret"])


def sync_completed_data(occasion_id: str, **extra: Any) -> dict[str, Any]:
    """A valid ``integration.sync_completed`` payload's ``data`` (the catalog's schema is checked)."""
    return {
        "connection_id": "con_x",
        "integration_key": "printing_partner",
        "occasion_id": occasion_id,
        "status": "succeeded",
        "last_sync_at": "2027-06-12T10:00:00Z",
        **extra,
    }


def emit(runtime: Runtime, occasion_id: str, event_type: str = EVENT, **data: Any) -> list[str]:
    payload = sync_completed_data(occasion_id)
    payload.update(data)
    with runtime.db.write() as session:
        return webhooks.emit_event(session, occasion_id=occasion_id, event_type=event_type, data=payload)


def delivery(runtime: Runtime, delivery_id: str) -> WebhookDelivery:
    with runtime.db.read() as session:
        row = session.get(WebhookDelivery, delivery_id)
        assert row is not None
        return row


def attempts(runtime: Runtime, delivery_id: str) -> list[WebhookAttempt]:
    with runtime.db.read() as session:
        return list(
            session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id == delivery_id)
                .order_by(WebhookAttempt.id)
            )
        )


def endpoint(runtime: Runtime, endpoint_id: str) -> WebhookEndpoint:
    with runtime.db.read() as session:
        row = session.get(WebhookEndpoint, endpoint_id)
        assert row is not None
        return row


def wait_until_due(runtime: Runtime, delivery_id: str) -> None:
    due = delivery(runtime, delivery_id).next_attempt_at
    assert due is not None
    pause = (due - utcnow()).total_seconds()
    assert pause < 2, f"next attempt unexpectedly far away: {pause}s"
    time.sleep(max(0.0, pause) + 0.02)


def metric(outcome: str) -> float:
    return WEBHOOK_DELIVERIES.labels(outcome=outcome)._value.get()


# --- tests -----------------------------------------------------------------------------------------


def test_delivery_is_signed_the_standard_webhooks_way(api: Api, runtime: Runtime, receiver: Receiver):
    s = add_endpoint(api, receiver.url)
    before = metric("delivered")
    [delivery_id] = emit(runtime, s.occasion_id, last_sync_at="2027-06-12T10:00:00Z")

    webhooks.deliver(runtime, delivery_id, worker_id="w1")

    [got] = receiver.received
    assert got.path == "/hooks/tov"
    assert got.headers["webhook-id"] == delivery_id
    assert got.headers["content-type"] == "application/json"
    assert verify(s.secret, got.headers, got.body)
    # the verifier can fail: a changed body, another id or another secret do not verify
    assert not verify(s.secret, got.headers, got.body.replace(b"succeeded", b"failed"))
    assert not verify(s.secret, {**got.headers, "webhook-id": "msg_other"}, got.body)
    assert not verify(webhooks.new_signing_secret(), got.headers, got.body)
    payload = json.loads(got.body)
    assert set(payload) == {"type", "id", "occurred_at", "data"}
    assert payload["type"] == EVENT
    assert payload["data"] == {
        "connection_id": "con_x",
        "integration_key": "printing_partner",
        "occasion_id": s.occasion_id,
        "status": "succeeded",
        "last_sync_at": "2027-06-12T10:00:00Z",
    }
    assert datetime.fromisoformat(payload["occurred_at"].replace("Z", "+00:00")).tzinfo is not None
    row = delivery(runtime, delivery_id)
    assert (row.state, row.attempt, row.lease_owner) == ("delivered", 1, None)
    assert row.delivered_at is not None
    [attempt] = attempts(runtime, delivery_id)
    assert (attempt.status_code, attempt.succeeded, attempt.error) == (200, True, None)
    assert attempt.response_excerpt == "status 200"
    assert attempt.duration_ms > 0
    assert metric("delivered") == before + 1
    # a second call for the same id does nothing
    webhooks.deliver(runtime, delivery_id, worker_id="w2")
    assert len(receiver.received) == 1
    assert len(attempts(runtime, delivery_id)) == 1


def test_payload_carries_no_secret_values(api: Api, runtime: Runtime, receiver: Receiver):
    s = add_endpoint(api, receiver.url)
    [delivery_id] = emit(
        runtime,
        s.occasion_id,
        api_key="pk_live_ABCDEFGHIJKLMNOP",
        details={"note": "key tov_ik0123_abcdefghijklmnop leaked", "password": "hunter22"},
    )
    webhooks.deliver(runtime, delivery_id, worker_id="w1")
    [got] = receiver.received
    text = got.body.decode()
    for secret in ("pk_live_ABCDEFGHIJKLMNOP", "tov_ik0123_abcdefghijklmnop", "hunter22", s.secret):
        assert secret not in text
    data = json.loads(text)["data"]
    assert data["api_key"].startswith("••")
    assert data["status"] == "succeeded"


def test_receiver_that_fails_then_recovers_gets_the_same_webhook_id(
    api: Api, runtime: Runtime, receiver: Receiver
):
    # long enough that the "not due yet" call below is not due even on a loaded machine
    rt = tuned(runtime, webhook_retry_delays=(0.6, 0.6))
    s = add_endpoint(api, receiver.url)
    receiver.script = [(500, {})]
    [delivery_id] = emit(rt, s.occasion_id)

    webhooks.deliver(rt, delivery_id, worker_id="w1")
    row = delivery(rt, delivery_id)
    assert (row.state, row.attempt) == ("pending", 1)
    assert row.next_attempt_at is not None
    assert endpoint(rt, s.endpoint_id).failing_since is not None
    webhooks.deliver(rt, delivery_id, worker_id="w1")  # not due yet: nothing is sent
    assert len(receiver.received) == 1

    wait_until_due(rt, delivery_id)
    webhooks.deliver(rt, delivery_id, worker_id="w2")

    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery_id
    assert first.body == second.body
    assert verify(s.secret, first.headers, first.body)
    assert verify(s.secret, second.headers, second.body)
    row = delivery(rt, delivery_id)
    assert (row.state, row.attempt) == ("delivered", 2)
    assert [(a.status_code, a.succeeded) for a in attempts(rt, delivery_id)] == [(500, False), (200, True)]
    assert attempts(rt, delivery_id)[0].error == "The endpoint answered HTTP 500."
    assert endpoint(rt, s.endpoint_id).failing_since is None


def test_410_disables_the_endpoint(api: Api, runtime: Runtime, receiver: Receiver):
    s = add_endpoint(api, receiver.url)
    receiver.script = [(410, {})]
    [first, waiting] = emit(runtime, s.occasion_id) + emit(runtime, s.occasion_id)

    webhooks.deliver(runtime, first, worker_id="w1")

    assert delivery(runtime, first).state == "failed"
    assert delivery(runtime, waiting).state == "failed"  # nothing more goes to a gone endpoint
    ep = endpoint(runtime, s.endpoint_id)
    assert ep.state == "disabled"
    assert "410" in (ep.disabled_reason or "")
    with runtime.db.read() as session:
        [entry] = session.scalars(select(Activity).where(Activity.kind == "webhook.endpoint_disabled")).all()
    assert entry.occasion_id == s.occasion_id
    assert entry.actor == "system"
    assert "410" in entry.summary
    assert entry.details["endpoint_id"] == s.endpoint_id
    assert emit(runtime, s.occasion_id) == []
    webhooks.deliver(runtime, waiting, worker_id="w1")
    assert len(receiver.received) == 1


def test_retry_after_is_honoured(api: Api, runtime: Runtime, receiver: Receiver):
    rt = tuned(runtime, webhook_retry_delays=(0.05, 0.05))
    s = add_endpoint(api, receiver.url)
    receiver.script = [(503, {"Retry-After": "120"})]
    [delivery_id] = emit(rt, s.occasion_id)

    sent_at = utcnow()
    webhooks.deliver(rt, delivery_id, worker_id="w1")

    row = delivery(rt, delivery_id)
    assert row.state == "pending"
    assert row.next_attempt_at is not None
    wait = (row.next_attempt_at - sent_at).total_seconds()
    assert 119 <= wait <= 125
    assert delivery_id not in webhooks.requeue_due_deliveries(rt, utcnow())
    webhooks.deliver(rt, delivery_id, worker_id="w1")
    assert len(receiver.received) == 1
    assert delivery_id in webhooks.requeue_due_deliveries(rt, utcnow() + timedelta(seconds=126))


def test_without_retry_after_the_schedule_applies(api: Api, runtime: Runtime, receiver: Receiver):
    rt = tuned(runtime, webhook_retry_delays=(30, 600))
    s = add_endpoint(api, receiver.url)
    receiver.script = [(500, {}), (502, {})]
    [delivery_id] = emit(rt, s.occasion_id)
    webhooks.deliver(rt, delivery_id, worker_id="w1")
    first_due = delivery(rt, delivery_id).next_attempt_at
    assert first_due is not None
    assert 29 <= (first_due - utcnow()).total_seconds() <= 31
    with rt.db.write() as session:  # let time pass
        session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(next_attempt_at=utcnow())
        )
    webhooks.deliver(rt, delivery_id, worker_id="w1")
    second_due = delivery(rt, delivery_id).next_attempt_at
    assert second_due is not None
    assert 599 <= (second_due - utcnow()).total_seconds() <= 601


def test_exhausting_the_delays_fails_the_delivery(api: Api, runtime: Runtime, receiver: Receiver):
    rt = tuned(runtime, webhook_retry_delays=(0.02, 0.02))
    s = add_endpoint(api, receiver.url)
    receiver.script = [(500, {})] * 5
    [delivery_id] = emit(rt, s.occasion_id)
    before = metric("failed")

    webhooks.deliver(rt, delivery_id, worker_id="w1")
    for _ in range(2):
        wait_until_due(rt, delivery_id)
        webhooks.deliver(rt, delivery_id, worker_id="w1")

    row = delivery(rt, delivery_id)
    assert (row.state, row.attempt, row.next_attempt_at) == ("failed", 3, None)
    assert len(receiver.received) == 3
    assert {r.headers["webhook-id"] for r in receiver.received} == {delivery_id}
    assert [a.status_code for a in attempts(rt, delivery_id)] == [500, 500, 500]
    assert metric("failed") == before + 1
    time.sleep(0.05)
    webhooks.deliver(rt, delivery_id, worker_id="w1")
    assert len(receiver.received) == 3
    assert delivery_id not in webhooks.requeue_due_deliveries(rt, utcnow() + timedelta(days=1))
    assert endpoint(rt, s.endpoint_id).state == "active"  # failing for seconds, not days


def test_concurrent_deliver_calls_send_once(api: Api, runtime: Runtime, receiver: Receiver):
    s = add_endpoint(api, receiver.url)
    receiver.delay = 0.2
    [delivery_id] = emit(runtime, s.occasion_id)
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait()
            webhooks.deliver(runtime, delivery_id, worker_id=f"w{n}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len(receiver.received) == 1
    assert len(attempts(runtime, delivery_id)) == 1
    row = delivery(runtime, delivery_id)
    assert (row.state, row.attempt) == ("delivered", 1)


def test_an_expired_lease_is_taken_over_and_a_live_one_is_not(api: Api, runtime: Runtime, receiver: Receiver):
    s = add_endpoint(api, receiver.url)
    [crashed, busy] = emit(runtime, s.occasion_id) + emit(runtime, s.occasion_id)
    now = utcnow()
    with runtime.db.write() as session:  # a worker claimed both, then died (crashed) / is working (busy)
        for delivery_id, expires in (
            (crashed, now - timedelta(seconds=1)),
            (busy, now + timedelta(minutes=1)),
        ):
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id)
                .values(state="delivering", attempt=1, lease_owner="dead", lease_expires_at=expires)
            )
    due = webhooks.requeue_due_deliveries(runtime, utcnow())
    assert crashed in due
    assert busy not in due

    webhooks.deliver(runtime, busy, worker_id="w2")
    webhooks.deliver(runtime, crashed, worker_id="w2")

    assert [r.headers["webhook-id"] for r in receiver.received] == [crashed]
    assert (delivery(runtime, crashed).state, delivery(runtime, crashed).attempt) == ("delivered", 2)
    assert delivery(runtime, busy).state == "delivering"


def test_requeue_lists_only_due_pending_deliveries(api: Api, runtime: Runtime, receiver: Receiver):
    s = add_endpoint(api, receiver.url)
    [due, later, done] = (
        emit(runtime, s.occasion_id) + emit(runtime, s.occasion_id) + emit(runtime, s.occasion_id)
    )
    with runtime.db.write() as session:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == later)
            .values(next_attempt_at=utcnow() + timedelta(hours=1))
        )
    webhooks.deliver(runtime, done, worker_id="w1")
    listed = webhooks.requeue_due_deliveries(runtime, utcnow())
    assert due in listed
    assert later not in listed
    assert done not in listed


def test_name_resolving_to_loopback_is_refused_at_send_time(
    api: Api, runtime: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
):
    """A public-looking name whose DNS answer is loopback (DNS rebinding) is refused at connect time."""
    real_getaddrinfo = socket.getaddrinfo
    looked_up: list[str] = []

    def rebinding_dns(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.rebind.example":
            looked_up.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    strict = tuned(runtime, allow_private_urls=False, webhook_retry_delays=(60,))
    with TestClient(create_app(strict), raise_server_exceptions=False) as client:
        strict_api = Api(client, strict)
        s = add_endpoint(strict_api, f"https://hooks.rebind.example:{receiver.port}/hooks/tov")
    [delivery_id] = emit(strict, s.occasion_id)

    webhooks.deliver(strict, delivery_id, worker_id="w1")

    assert looked_up == ["hooks.rebind.example"]
    assert receiver.received == []
    [attempt] = attempts(strict, delivery_id)
    assert attempt.status_code is None
    assert attempt.succeeded is False
    assert attempt.error == "Refused: hooks.rebind.example resolves to a non-public address."
    assert delivery(strict, delivery_id).state == "pending"


def test_private_url_stored_earlier_is_refused_when_private_urls_are_off(
    api: Api, runtime: Runtime, receiver: Receiver
):
    s = add_endpoint(api, receiver.url)  # accepted while private URLs were allowed
    strict = tuned(runtime, allow_private_urls=False)
    [delivery_id] = emit(strict, s.occasion_id)
    webhooks.deliver(strict, delivery_id, worker_id="w1")
    assert receiver.received == []
    [attempt] = attempts(strict, delivery_id)
    assert (attempt.error or "").startswith("Refused:")


def test_endpoint_failing_for_days_is_disabled(api: Api, runtime: Runtime, receiver: Receiver):
    s = add_endpoint(api, receiver.url)
    receiver.script = [(500, {}), (500, {})]
    with runtime.db.write() as session:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == s.endpoint_id)
            .values(failing_since=utcnow() - timedelta(days=1))
        )
    [recent] = emit(runtime, s.occasion_id)
    webhooks.deliver(runtime, recent, worker_id="w1")
    assert endpoint(runtime, s.endpoint_id).state == "active"  # one day is not enough
    assert delivery(runtime, recent).state == "pending"

    with runtime.db.write() as session:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == s.endpoint_id)
            .values(failing_since=utcnow() - timedelta(days=6))
        )
    [old] = emit(runtime, s.occasion_id)
    webhooks.deliver(runtime, old, worker_id="w1")

    ep = endpoint(runtime, s.endpoint_id)
    assert ep.state == "disabled"
    assert "6 days" in (ep.disabled_reason or "")
    assert delivery(runtime, old).state == "failed"
    assert delivery(runtime, recent).state == "failed"
    with runtime.db.read() as session:
        [entry] = session.scalars(select(Activity).where(Activity.kind == "webhook.endpoint_disabled")).all()
    assert "failed for 6 days" in entry.summary


def test_emit_event_targets_subscribed_active_endpoints_of_the_occasion(
    api: Api, runtime: Runtime, receiver: Receiver
):
    token = api.user("planner")
    a = add_endpoint(api, receiver.url, token=token)
    other_types = add_endpoint(api, receiver.url, event_types=["integration.sync_failed"], token=token)
    assert emit(runtime, other_types.occasion_id) == []  # not subscribed
    [to_a] = emit(runtime, a.occasion_id)
    with runtime.db.read() as session:
        assert session.get(WebhookDelivery, to_a).endpoint_id == a.endpoint_id  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="unknown webhook event type"):
        emit(runtime, a.occasion_id, event_type="integration.exploded")


def test_emit_event_is_part_of_the_callers_transaction(api: Api, runtime: Runtime, receiver: Receiver):
    s = add_endpoint(api, receiver.url)
    emitted: list[str] = []

    def change_that_fails() -> None:
        with runtime.db.write() as session:
            emitted.extend(
                webhooks.emit_event(
                    session,
                    occasion_id=s.occasion_id,
                    event_type=EVENT,
                    data=sync_completed_data(s.occasion_id),
                )
            )
            raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert len(emitted) == 1
    with runtime.db.read() as session:
        assert session.scalars(select(WebhookDelivery)).all() == []


def test_deliver_of_an_unknown_id_does_nothing(runtime: Runtime):
    webhooks.deliver(runtime, "msg_nope", worker_id="w1")
    assert webhooks.requeue_due_deliveries(runtime, utcnow()) == []


@pytest.mark.no_db
def test_parse_retry_after_reads_seconds_and_dates():
    now = datetime(2027, 6, 12, 10, 0, 0, tzinfo=UTC)
    assert webhooks.parse_retry_after("120", now) == 120
    assert webhooks.parse_retry_after("Sat, 12 Jun 2027 10:05:00 GMT", now) == 300
    assert webhooks.parse_retry_after("Sat, 12 Jun 2027 09:00:00 GMT", now) == 0
    assert webhooks.parse_retry_after("9999999", now) == 24 * 3600
    assert webhooks.parse_retry_after("soon", now) is None
    assert webhooks.parse_retry_after(None, now) is None


@pytest.mark.no_db
def test_signature_matches_the_standard_webhooks_example():
    # the worked example from the Standard Webhooks specification's reference libraries
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        webhooks.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(
    api: Api, runtime: Runtime, receiver: Receiver
):
    rt = tuned(runtime, lease_seconds=0.8, webhook_retry_delays=(60,))  # attempts end within 0.2 s
    s = add_endpoint(api, receiver.url)
    receiver.delay = 0.6  # longer than the attempt may take: had it waited, it would hold a 200
    [delivery_id] = emit(rt, s.occasion_id)
    webhooks.deliver(rt, delivery_id, worker_id="w1")
    [attempt] = attempts(rt, delivery_id)
    assert (attempt.status_code, attempt.error) == (None, "The endpoint did not answer in time.")
    row = delivery(rt, delivery_id)
    assert (row.state, row.lease_owner) == ("pending", None)


def test_event_data_with_timestamps_is_sent_as_rfc3339(api: Api, runtime: Runtime, receiver: Receiver):
    s = add_endpoint(api, receiver.url)
    synced = datetime(2027, 6, 12, 10, 0, 5, tzinfo=UTC)
    [delivery_id] = emit(runtime, s.occasion_id, last_sync_at=synced, records_written=3)
    webhooks.deliver(runtime, delivery_id, worker_id="w1")
    [got] = receiver.received
    data = json.loads(got.body)["data"]
    assert (data["last_sync_at"], data["records_written"]) == ("2027-06-12T10:00:05Z", 3)
