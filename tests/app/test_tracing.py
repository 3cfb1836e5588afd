"""Optional OpenTelemetry tracing: one manual sync is one connected trace, from the API request
through the queued run to the partner's HTTP call; off, the app loads no tracing machinery."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from tests import factories
from tests.callbacks.test_callbacks import order
from tests.conftest import Api
from tests.support.sync import make_connection, planner
from tests.webhooks.test_webhooks_delivery import EVENT, Receiver, emit
from tovplus.app import create_app
from tovplus.db.models import SyncRun
from tovplus.partner_sim import BackgroundServer, SimState
from tovplus.partner_sim import create_app as create_sim
from tovplus.runtime import Runtime, build_runtime, tracing
from tovplus.services import sync as syncs
from tovplus.services import webhooks
from tovplus.services.callbacks import DELIVERY_HEADER, SECRET_HEADER
from tovplus.settings import Settings


@pytest.fixture
def traced(settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(settings.model_copy(update={"otel_enabled": True, "otel_exporter": "memory"}))
    yield rt
    rt.close()
    tracing.shutdown_tracing()


@pytest.fixture
def partner_url() -> Iterator[str]:
    with BackgroundServer(create_sim(SimState())) as server:
        yield server.url


def _ancestors(span: Any, by_id: dict[int, Any]) -> list[Any]:
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


def test_one_sync_now_is_one_trace_from_the_request_to_the_partner(traced: Runtime, partner_url: str):
    made = make_connection(traced, partner_url)
    exporter = tracing.exporter()
    with TestClient(create_app(traced), raise_server_exceptions=False) as client:
        exporter.clear()
        r = client.post(
            f"/v1/occasions/{made.occasion_id}/integrations/connections/{made.connection_id}/sync",
            headers={**Api.auth(made.token), "x-request-id": "trace-otel-0001"},
        )
    assert r.status_code == 202, r.text
    run_id = r.json()["sync_run_id"]
    with traced.db.read() as session:
        stored = session.scalar(select(SyncRun.traceparent).where(SyncRun.id == run_id))
    assert stored is not None
    assert stored.startswith("00-")

    # the worker's step, in this process but outside the request (no span is current here)
    assert syncs.execute_run(traced, run_id, worker_id="w").state == "succeeded"

    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    server = [s for s in spans if s.kind.name == "SERVER"]
    assert len(server) == 1
    (run,) = [s for s in spans if s.name == "sync.run"]
    partner_calls = [s for s in spans if s.kind.name == "CLIENT" and s.name.startswith("GET")]
    assert partner_calls
    trace_id = server[0].context.trace_id
    assert {s.context.trace_id for s in [run, *partner_calls]} == {trace_id}
    assert server[0] in _ancestors(run, by_id)  # the run continues the request that queued it
    for call in partner_calls:
        chain = [s.name for s in _ancestors(call, by_id)]
        assert chain[:2] == ["sync.adapter", "sync.run"]
    assert run.attributes["tovplus.request_id"] == "trace-otel-0001"
    assert any("db.system" in s.attributes or "db.system.name" in s.attributes for s in spans)


def test_each_delivery_of_a_batch_continues_the_trace_that_queued_it(traced: Runtime, partner_url: str):
    made = make_connection(traced, partner_url)
    receiver = Receiver()
    try:
        webhooks.create_endpoint(traced, made.caller, made.occasion_id, url=receiver.url, event_types=[EVENT])
        exporter = tracing.exporter()
        exporter.clear()
        queued: dict[str, int] = {}  # delivery id -> the trace id of the span that queued it
        for n in range(2):
            with tracing.span(f"test.request-{n}") as request:
                for delivery_id in emit(traced, made.occasion_id):
                    queued[delivery_id] = request.get_span_context().trace_id

        done = webhooks.deliver_many(traced, list(queued), worker_id="w", concurrency=2)
    finally:
        receiver.stop()

    assert sorted(d.label for d in done) == ["delivered", "delivered"]
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    delivers = [s for s in spans if s.name == "webhook.deliver"]
    assert {s.attributes["tovplus.delivery_id"]: s.context.trace_id for s in delivers} == queued
    assert len(set(queued.values())) == 2  # two traces, each delivery in its own
    posts = [s for s in spans if s.kind.name == "CLIENT" and s.name.startswith("POST")]
    assert len(posts) == 2
    for post in posts:
        assert _ancestors(post, by_id)[0].name == "webhook.deliver"


def test_off_the_app_imports_no_tracing_machinery(settings: Settings):
    # opentelemetry-api itself is a FastAPI dependency (fastapi.telemetry imports it); the SDK,
    # the instrumentation and our set-up are what tracing adds, and off none of them loads
    code = (
        "import sys; from tovplus.settings import Settings; from tovplus.runtime import build_runtime;"
        "from tovplus.app import create_app; import tovplus.worker.tasks;"
        f"rt = build_runtime(Settings(database_url={settings.resolved_database_url!r},"
        f" secret_keys={settings.secret_keys!r})); create_app(rt); rt.close();"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.instrumentation',"
        " 'opentelemetry.sdk.trace'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_switching_tracing_off_restores_every_engine_connect(settings: Settings):
    rt = build_runtime(settings.model_copy(update={"otel_enabled": True, "otel_exporter": "memory"}))
    other = build_runtime(settings.model_copy(update={"otel_enabled": True, "otel_exporter": "memory"}))
    try:
        assert hasattr(Engine.connect, "__wrapped__")  # wrapped once per instrumented engine
    finally:
        rt.close()
        other.close()
        tracing.shutdown_tracing()
    assert not hasattr(Engine.connect, "__wrapped__")
    with rt.db.read() as session:  # no span, no warning from the shut-down provider
        assert session.execute(select(1)).scalar() == 1


def test_a_callback_served_by_its_direct_route_is_still_one_traced_request(traced: Runtime):
    caller, _token = planner(traced)
    occasion_id = factories.occasion(traced, caller)
    made = factories.connection(
        traced,
        caller,
        occasion_id,
        config={"account_id": "acct-1", "api_base_url": "https://printer.example.com/api"},
        secrets={"api_key": "pk_live_TRACED0123456789"},
        state="enabled",
    )
    assert made.issued_key is not None
    exporter = tracing.exporter()
    with TestClient(create_app(traced), raise_server_exceptions=False) as client:
        exporter.clear()
        r = client.post(
            f"/v1/integrations/callbacks/printing_partner/{made.connection['id']}",
            json=order(),
            headers={SECRET_HEADER: made.issued_key, DELIVERY_HEADER: "traced-1"},
        )
    assert r.status_code == 202, r.text
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    (server,) = [s for s in spans if s.kind.name == "SERVER"]  # one request span, as before
    assert "/v1/integrations/callbacks/" in server.name
    (ingest,) = [s for s in spans if s.name == "callback.ingest"]
    assert server in _ancestors(ingest, by_id)  # the service's span is inside the request's
