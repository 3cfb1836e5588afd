"""Request ids: on every answer, taken from a sane caller, bound for services and logs, stored on
the work a request queues, and sent on the partner and webhook requests that work makes."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import Api
from tests.support.loopback import LoopbackServer
from tests.support.sync import make_connection
from tests.sync.test_engine import engine_for
from tovplus.app import create_app
from tovplus.db.models import SyncRun, WebhookDelivery
from tovplus.logs import JsonFormatter
from tovplus.partner_sim import BackgroundServer, SimState
from tovplus.partner_sim import create_app as create_sim
from tovplus.runtime import Runtime, trace
from tovplus.services import webhooks
from tovplus.services.sync import enqueue_run
from tovplus.worker import install_dispatcher

HEADER = "x-request-id"


def test_every_answer_carries_a_request_id(api: Api):
    client = api.client
    answers = [
        client.get("/healthz"),
        client.get("/v1/integrations/catalog"),  # 401
        client.get("/v1/nowhere"),  # 404
        client.get("/sign-in"),  # a page
        client.post("/v1/occasions", content=b"x" * 2_000_000, headers={"content-type": "application/json"}),
        client.post("/v1/integrations/callbacks/printing_partner/con_nope", json={}),
    ]
    assert [r.status_code for r in answers] == [200, 401, 404, 200, 413, answers[-1].status_code]
    ids = [r.headers.get(HEADER) for r in answers]
    assert all(i and i.startswith("req_") for i in ids), ids
    assert len(set(ids)) == len(ids)
    assert all(r.headers.get_list(HEADER) == [r.headers[HEADER]] for r in answers)


@pytest.mark.parametrize(
    ("offered", "kept"),
    [
        ("abc-123_X.y", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("has space", False),
        ("semi;colon", False),
        ("ünicode", False),
        ("", False),
    ],
)
def test_a_sane_caller_id_is_kept_anything_else_replaced(client: TestClient, offered: str, kept: bool):
    r = client.get("/healthz", headers={HEADER: offered.encode()})
    assert r.status_code == 200
    if kept:
        assert r.headers[HEADER] == offered
    else:
        assert r.headers[HEADER].startswith("req_")


def test_an_unexpected_error_answers_500_with_the_id_and_logs_it(runtime: Runtime, caplog: Any):
    app = create_app(runtime)

    @app.get("/v1/_boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR), TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/v1/_boom", headers={HEADER: "support-ticket-42"})
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    assert r.headers[HEADER] == "support-ticket-42"
    logged = [rec for rec in caplog.records if rec.getMessage().startswith("unhandled error")]
    assert [getattr(rec, "request_id", None) for rec in logged] == ["support-ticket-42"]


@pytest.mark.no_db
def test_log_records_carry_the_bound_id_and_json_logs_print_it():
    log = logging.getLogger("tovplus.test.trace")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    log.addHandler(handler)
    try:
        with trace.bound("req-in-logs"):
            log.warning("inside")
        log.warning("outside")
    finally:
        log.removeHandler(handler)
    inside, outside = records
    assert json.loads(JsonFormatter().format(inside))["request_id"] == "req-in-logs"
    assert "request_id" not in json.loads(JsonFormatter().format(outside))
    assert trace.current() is None


@pytest.mark.no_db
def test_bound_ids_do_not_leak_between_threads():
    seen: list[str | None] = []
    with trace.bound("main-thread"):
        t = threading.Thread(target=lambda: seen.append(trace.current()))
        t.start()
        t.join()
        assert trace.current() == "main-thread"
    assert seen == [None]


# --- one id from the request to the partner and the webhook receiver --------------------------------


class Recorder:
    """A loopback HTTP server answering 200 to every POST; keeps each request's headers."""

    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                recorder.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.loopback = LoopbackServer(Handler)
        self.url = self.loopback.url
        self.stop = self.loopback.stop


class HeaderLog:
    """ASGI wrapper around the partner simulator that keeps every request's x-request-id."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[str | None] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            self.seen.append(headers[b"x-request-id"].decode() if b"x-request-id" in headers else None)
        await self.app(scope, receive, send)


@pytest.fixture
def partner() -> Iterator[tuple[str, HeaderLog]]:
    app = HeaderLog(create_sim(SimState()))
    with BackgroundServer(app) as server:
        yield server.url, app


@pytest.fixture
def receiver() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.stop()


def test_a_sync_now_carries_its_request_id_to_the_partner_and_the_webhook(
    api: Api, runtime: Runtime, partner: tuple[str, HeaderLog], receiver: Recorder, caplog: Any
):
    install_dispatcher(runtime)  # the in-memory queue runs each task inside the call that queues it
    url, partner_log = partner
    made = make_connection(runtime, url)
    webhooks.create_endpoint(
        runtime, made.caller, made.occasion_id, url=receiver.url, event_types=["integration.sync_completed"]
    )
    partner_log.seen.clear()

    with caplog.at_level(logging.INFO):
        r = api.client.post(
            f"/v1/occasions/{made.occasion_id}/integrations/connections/{made.connection_id}/sync",
            headers={**api.auth(made.token), HEADER: "trace-sync-0001"},
        )
    assert r.status_code == 202, r.text
    assert r.headers[HEADER] == "trace-sync-0001"

    with runtime.db.read() as session:
        run = session.scalars(select(SyncRun).where(SyncRun.connection_id == made.connection_id)).one()
        deliveries = list(session.scalars(select(WebhookDelivery)))
    assert run.state == "succeeded"
    assert run.request_id == "trace-sync-0001"
    assert partner_log.seen
    assert set(partner_log.seen) == {"trace-sync-0001"}
    assert [d.request_id for d in deliveries] == ["trace-sync-0001"]
    assert [h.get(HEADER) for h in receiver.headers] == ["trace-sync-0001"]
    worker_lines = [rec for rec in caplog.records if rec.name.startswith("tovplus.services.sync")]
    assert worker_lines
    assert {getattr(rec, "request_id", None) for rec in worker_lines} == {"trace-sync-0001"}


@pytest.mark.parametrize("asked_by", ["trace-engine-0001", None])
def test_the_sync_engine_carries_the_run_s_request_id_to_the_partner_and_the_webhook(
    runtime: Runtime, partner: tuple[str, HeaderLog], receiver: Recorder, caplog: Any, asked_by: str | None
):
    url, partner_log = partner
    made = make_connection(runtime, url)
    webhooks.create_endpoint(
        runtime, made.caller, made.occasion_id, url=receiver.url, event_types=["integration.sync_completed"]
    )
    with trace.bound(asked_by), runtime.db.write() as session:
        run_id, _ = enqueue_run(session, made.connection_id, trigger="manual", requested_by="x")
    expected = asked_by or run_id  # scheduled work: its own row id, as the inline path binds
    partner_log.seen.clear()

    engine = engine_for(runtime, concurrency=2)
    try:
        with caplog.at_level(logging.INFO):
            assert engine.submit(run_id)
            assert engine.wait_idle(30)
    finally:
        engine.stop()
    with runtime.db.read() as session:
        deliveries = list(session.scalars(select(WebhookDelivery)))
    assert [d.request_id for d in deliveries] == [expected]  # written by the engine's finish
    webhooks.deliver_many(runtime, [d.id for d in deliveries], worker_id="w")

    assert partner_log.seen
    assert set(partner_log.seen) == {expected}
    assert [h.get(HEADER) for h in receiver.headers] == [expected]
    lines = [rec for rec in caplog.records if rec.name.startswith("tovplus.services.sync")]
    assert lines
    assert {getattr(rec, "request_id", None) for rec in lines} == {expected}


def test_work_no_request_caused_is_traced_by_its_own_row_id(runtime: Runtime, partner: tuple[str, HeaderLog]):
    made = make_connection(runtime, partner[0])
    with runtime.db.write() as session:
        run_id, created = enqueue_run(session, made.connection_id, trigger="schedule", requested_by="system")
    assert created
    with runtime.db.read() as session:
        assert session.get(SyncRun, run_id).request_id is None  # type: ignore[union-attr]

    seen: list[str | None] = []

    @trace.bound_to_row(runtime.db, SyncRun)
    def task(row_id: str) -> None:
        seen.append(trace.current())

    task(run_id)
    with trace.bound("from-a-request"), runtime.db.write() as session:
        session.get(SyncRun, run_id).state = "succeeded"  # type: ignore[union-attr]
        second, _ = enqueue_run(session, made.connection_id, trigger="manual", requested_by="x")
    task(second)
    assert seen == [run_id, "from-a-request"]
    assert trace.current() is None
