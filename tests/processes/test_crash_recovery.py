"""Crash recovery: ``tovplus serve`` (embedded worker) is SIGKILLed in the middle of a burst of
callbacks, manual syncs and webhook deliveries, then restarted on the same data.

After the restart:

* every callback that was answered 2xx before the kill is stored (its ``callback_deliveries`` row
  with the activity id it was answered with, and its record), and sending it again is a duplicate;
  the callbacks that never got an answer are sent again (a partner retries) and are stored once;
* every sync run ends in a final state (``succeeded`` / ``failed``) within a bounded wait,
  including the ones that were running when the process died (their lease expires and the reaper
  takes them back);
* every webhook delivery ends ``delivered``, and the receiver has seen each ``webhook-id`` at
  least once, every copy of one id carrying the same body (redelivery after the crash reuses the
  id), and no id that is not a delivery row: distinct ids seen == delivered rows.

Runs on both backends (the SQLite pass uses a SQLite queue file, the PostgreSQL pass a PostgreSQL
queue), about 15 to 25 seconds each on a quiet 2-core machine.
"""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.support.loopback import LoopbackServer
from tests.support.sync import (
    Proc,
    Sim,
    env_for,
    free_port,
    planner,
    queue_url_for,
    simulator,
    tuned,
    wait_for,
    wait_http,
)
from tovplus.db.models import CallbackDelivery, SyncedRecord, SyncRun, WebhookDelivery
from tovplus.partner_sim import DEMO_ACCOUNT_ID, DEMO_API_KEY
from tovplus.runtime import Runtime, build_runtime
from tovplus.services.webhooks import encode_body
from tovplus.settings import Settings

pytestmark = pytest.mark.slow

CONNECTIONS = 3
CALLBACK_THREADS = 3
FINAL = ("succeeded", "failed")


# --- a webhook receiver that remembers every webhook-id --------------------------------------------


@dataclass
class Receiver:
    """HTTP server on 127.0.0.1 answering 200 after ``delay``; keeps ``(webhook-id, body)`` per request."""

    delay: float = 0.0
    seen: list[tuple[str, bytes]] = field(default_factory=list)
    #: Requests received and not yet answered.
    in_flight: int = 0

    def __post_init__(self) -> None:
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request: nothing was received
                    return
                with lock:
                    receiver.seen.append((self.headers.get("webhook-id") or "", body))
                    receiver.in_flight += 1
                try:
                    if receiver.delay:
                        time.sleep(receiver.delay)
                finally:
                    with lock:
                        receiver.in_flight -= 1
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return None

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                return None  # a sender killed mid-request resets its connection: expected here

        self.loopback = LoopbackServer(Handler, server_class=Server)

    @property
    def url(self) -> str:
        return self.loopback.url

    def stop(self) -> None:
        self.loopback.stop()


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator() as s:
        yield s


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(delay=0.25)  # under the send budget (lease / 4 = 0.5 s)
    yield r
    r.stop()


@pytest.fixture
def crash_settings(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    return tuned(
        settings,
        queue_url=queue_url_for(request, tmp_path),
        lease_seconds=2.0,
        scheduler_tick_seconds=0.2,
        sync_retry_delays=(0.2, 0.2),
        sync_http_timeout_seconds=5.0,
    )


@pytest.fixture
def rt(crash_settings: Settings) -> Iterator[Runtime]:
    runtime = build_runtime(crash_settings)
    yield runtime
    runtime.close()


# --- the burst ----------------------------------------------------------------------------------------


@dataclass
class Sent:
    connection_id: str
    delivery_id: str
    order_id: str
    status: int | None = None  # None: no answer (the server died under it)
    activity_id: str | None = None


def callback_body(order_id: str) -> dict[str, Any]:
    return {
        "event": "order.status_changed",
        "order_id": order_id,
        "status": "printing",
        "occurred_at": "2026-11-25T19:40:00Z",
        "tracking_number": None,
    }


def post_callback(client: httpx.Client, base: str, key: str, sent: Sent) -> None:
    try:
        r = client.post(
            f"{base}/v1/integrations/callbacks/printing_partner/{sent.connection_id}",
            json=callback_body(sent.order_id),
            headers={"x-tov-integration-secret": key, "x-tov-delivery-id": sent.delivery_id},
        )
    except httpx.HTTPError:
        sent.status = None
        return
    sent.status = r.status_code
    if r.status_code in (200, 202):
        sent.activity_id = r.json()["activity_id"]


def test_serve_killed_mid_burst_loses_no_accepted_callback_finishes_every_run_and_delivers_each_webhook_once(
    rt: Runtime, crash_settings: Settings, sim: Sim, receiver: Receiver, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = env_for(
        crash_settings,
        TOVPLUS_WORKER_THREADS="3",
        TOVPLUS_WEBHOOK_RETRY_DELAYS="0.2,0.5,1,1,1,1,1,1",  # room for send timeouts on a busy machine
        TOVPLUS_SYNC_INTERVAL_SECONDS="3600",
        TOVPLUS_CALLBACK_RATE_PER_MINUTE="100000",
    )
    first = Proc(["serve", "--port", str(port)], env, tmp_path / "serve-1.log")
    second: Proc | None = None
    try:
        wait_http(f"{base}/healthz", proc=first, timeout=60)
        _caller, token = planner(rt)
        auth = {"Authorization": f"Bearer {token}"}
        api = httpx.Client(base_url=base, headers=auth, timeout=10)
        r = api.post("/v1/occasions", json={"name": "Crash wedding", "starts_on": "2027-06-12"})
        assert r.status_code == 201, r.text
        occasion_id = r.json()["occasion"]["id"]
        r = api.post(
            f"/v1/occasions/{occasion_id}/webhook-endpoints",
            json={
                "url": receiver.url,
                "event_types": ["integration.sync_completed", "integration.sync_failed"],
            },
        )
        assert r.status_code == 201, r.text
        # each partner request takes a while, so runs are mid-flight when the process dies
        sim.control("slow", delay_seconds=1.0)
        keys: dict[str, str] = {}
        for _ in range(CONNECTIONS):
            r = api.post(
                f"/v1/occasions/{occasion_id}/integrations/connections",
                json={
                    "integration_key": "printing_partner",
                    "config": {"account_id": DEMO_ACCOUNT_ID, "api_base_url": sim.url},
                    "secrets": {"api_key": DEMO_API_KEY},
                    "state": "enabled",
                },
            )
            assert r.status_code == 201, r.text
            keys[r.json()["connection"]["id"]] = r.json()["issued_key"]
        connection_ids = list(keys)

        # --- the burst: callbacks from several threads, manual syncs from another -----------------
        stop = threading.Event()
        counter = itertools.count()
        sent: list[Sent] = []
        sent_lock = threading.Lock()
        run_ids: set[str] = set()
        unexpected: list[str] = []

        def callbacks(worker: int) -> None:
            with httpx.Client(timeout=10) as client:
                while not stop.is_set():
                    n = next(counter)
                    connection_id = connection_ids[n % CONNECTIONS]
                    item = Sent(connection_id, f"crash-{worker}-{n}", f"cb-order-{n:05d}")
                    with sent_lock:
                        sent.append(item)
                    post_callback(client, base, keys[connection_id], item)
                    if item.status is None:
                        return  # the server is gone

        def syncs() -> None:
            with httpx.Client(base_url=base, headers=auth, timeout=10) as client:
                while not stop.is_set():
                    for connection_id in connection_ids:
                        try:
                            r = client.post(
                                f"/v1/occasions/{occasion_id}/integrations/connections/{connection_id}/sync"
                            )
                        except httpx.HTTPError:
                            return
                        if r.status_code != 202:
                            unexpected.append(f"sync {r.status_code}: {r.text[:200]}")
                            return
                        run_ids.add(r.json()["sync_run_id"])
                    time.sleep(0.05)

        threads = [
            threading.Thread(target=callbacks, args=(i,), daemon=True) for i in range(CALLBACK_THREADS)
        ]
        threads.append(threading.Thread(target=syncs, daemon=True))
        for t in threads:
            t.start()

        def mid_burst() -> bool:
            accepted = sum(1 for s in sent if s.status == 202)
            # a run that started within the last half second still has more than a second of
            # partner requests ahead of it, so it is certainly running when the kill lands
            recent = datetime.now(UTC) - timedelta(seconds=0.5)
            with rt.db.read() as session:
                running = session.scalar(
                    select(func.count()).where(SyncRun.state == "running", SyncRun.started_at >= recent)
                )
                finished = session.scalar(select(func.count()).where(SyncRun.state.in_(FINAL)))
            return accepted >= 30 and bool(running) and bool(finished) and receiver.in_flight > 0

        wait_for(
            mid_burst,
            timeout=60,
            interval=0.02,
            what="callbacks accepted, a run running, a webhook in flight",
        )
        first.popen.send_signal(signal.SIGKILL)
        first.popen.wait(10)
        stop.set()
        for t in threads:
            t.join(15)
        killed_at_running = _count_runs(rt, ("queued", "running"))

        # --- restart on the same data ------------------------------------------------------------------
        sim.control("ok")
        second = Proc(["serve", "--port", str(port)], env, tmp_path / "serve-2.log")
        wait_http(f"{base}/healthz", proc=second, timeout=60)

        assert unexpected == []
        accepted = [s for s in sent if s.status in (200, 202)]
        unanswered = [s for s in sent if s.status is None]
        assert len(accepted) >= 30
        assert not [s for s in sent if s.status is not None and s.status not in (200, 202)], [
            (s.delivery_id, s.status) for s in sent if s.status not in (None, 200, 202)
        ]

        # every accepted callback is stored exactly as it was answered
        with rt.db.read() as session:
            stored = {
                (row.connection_id, row.delivery_id): row.activity_id
                for row in session.scalars(select(CallbackDelivery))
            }
            records = {(row.connection_id, row.external_id) for row in session.scalars(select(SyncedRecord))}
        lost = [s.delivery_id for s in accepted if (s.connection_id, s.delivery_id) not in stored]
        assert lost == [], f"{len(lost)} accepted callbacks were lost: {lost[:10]}"
        wrong = [s.delivery_id for s in accepted if stored[(s.connection_id, s.delivery_id)] != s.activity_id]
        assert wrong == []
        missing = [s.order_id for s in accepted if (s.connection_id, s.order_id) not in records]
        assert missing == []

        # a partner's retries: accepted ones are duplicates with the first answer; unanswered are stored
        with httpx.Client(timeout=10) as client:
            for s in accepted[:20]:
                again = Sent(s.connection_id, s.delivery_id, s.order_id)
                post_callback(client, base, keys[s.connection_id], again)
                assert (again.status, again.activity_id) == (200, s.activity_id)
            for s in unanswered:
                post_callback(client, base, keys[s.connection_id], s)
                assert s.status in (200, 202)
        with rt.db.read() as session:
            delivery_ids = [row.delivery_id for row in session.scalars(select(CallbackDelivery))]
        assert len(delivery_ids) == len(set(delivery_ids))
        assert set(delivery_ids) == {s.delivery_id for s in sent}

        # --- every sync run ends, every webhook is delivered ----------------------------------------------
        def settled() -> bool:
            with rt.db.read() as session:
                open_runs = session.scalar(
                    select(func.count()).where(SyncRun.state.in_(("queued", "running")))
                )
                open_deliveries = session.scalar(
                    select(func.count()).where(WebhookDelivery.state.in_(("pending", "delivering")))
                )
            return open_runs == 0 and open_deliveries == 0

        wait_for(settled, timeout=60, interval=0.2, what="every sync run and webhook delivery to settle")

        with rt.db.read() as session:
            runs = list(session.scalars(select(SyncRun)))
            deliveries = list(session.scalars(select(WebhookDelivery)))
        assert run_ids, "no manual sync was accepted"
        assert run_ids <= {run.id for run in runs}
        assert {run.state for run in runs} <= set(FINAL)
        assert any(run.state == "succeeded" for run in runs)
        assert all(run.finished_at is not None for run in runs)
        assert killed_at_running >= 1

        assert deliveries, "no webhook was emitted"
        assert {d.state for d in deliveries} == {"delivered"}
        time.sleep(0.3)  # a copy whose answer got lost in the kill may still be on its way
        seen_ids = [webhook_id for webhook_id, _ in receiver.seen]
        assert set(seen_ids) == {d.id for d in deliveries}
        assert len(set(seen_ids)) == len(deliveries)
        # the one in flight at the kill was never recorded as delivered, so it came again, same id
        assert len(seen_ids) > len(deliveries)
        bodies: dict[str, set[bytes]] = {}
        for webhook_id, body in receiver.seen:
            bodies.setdefault(webhook_id, set()).add(body)
        assert all(len(b) == 1 for b in bodies.values()), "a webhook-id was reused for another body"
        assert all(bodies[d.id] == {encode_body(d.payload)} for d in deliveries)  # the row's own event
        payloads = [json.loads(encode_body(d.payload)) for d in deliveries]
        assert len({p["id"] for p in payloads}) == len(deliveries)  # one endpoint: one delivery per event
        assert {p["data"]["connection_id"] for p in payloads} <= set(connection_ids)
        assert DEMO_API_KEY not in b"".join(body for _, body in receiver.seen).decode()

        print(
            f"crash run: accepted={len(accepted)} unanswered={len(unanswered)} runs={len(runs)}"
            f" open_at_kill={killed_at_running} deliveries={len(deliveries)} copies={len(seen_ids)}"
        )
        second_output = second.output()
        assert "Traceback" not in second_output, second_output[-3000:]
    finally:
        first.stop(signal.SIGKILL)
        if second is not None:
            code = second.stop(signal.SIGTERM, timeout=20)
            assert code in (0, -15), second.output()[-3000:]


def _count_runs(rt: Runtime, states: tuple[str, ...]) -> int:
    with rt.db.read() as session:
        return int(session.scalar(select(func.count()).where(SyncRun.state.in_(states))) or 0)
