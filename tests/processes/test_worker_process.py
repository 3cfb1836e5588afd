"""Real processes: ``tovplus serve`` with its embedded worker stops cleanly on a signal, and a
``tovplus worker`` killed with SIGKILL mid-sync loses nothing: the run completes exactly once."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKEND
from tests.support.sync import (
    Proc,
    Sim,
    activity_of,
    connection,
    env_for,
    free_port,
    make_connection,
    queue_url_for,
    records,
    runs,
    simulator,
    tuned,
    wait_for,
    wait_http,
)
from tovplus.db.types import utcnow
from tovplus.runtime import Runtime, build_runtime
from tovplus.services.sync import scheduler
from tovplus.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator() as s:
        yield s


@pytest.fixture
def proc_settings(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    return tuned(
        settings,
        queue_url=queue_url_for(request, tmp_path),
        lease_seconds=2.0,
        scheduler_tick_seconds=0.2,
        sync_http_timeout_seconds=10.0,
    )


@pytest.fixture
def rt(proc_settings: Settings) -> Iterator[Runtime]:
    runtime = build_runtime(proc_settings)
    yield runtime
    runtime.close()


# signal handling does not depend on the database: both signals on the SQLite pass, SIGTERM on PostgreSQL
SIGNALS = [signal.SIGTERM, signal.SIGINT] if BACKEND == "sqlite" else [signal.SIGTERM]


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_serve_syncs_in_process_and_stops_cleanly_on_a_signal(rt, proc_settings, sim, tmp_path, sig):
    port = free_port()
    serve = Proc(
        ["serve", "--port", str(port)],
        env_for(proc_settings, TOVPLUS_WORKER_THREADS="2"),
        tmp_path / "serve.log",
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=serve)
        made = make_connection(rt, sim.url)  # enabled: due at once; the embedded scheduler picks it up
        wait_for(
            lambda: connection(rt, made.connection_id).last_sync_status == "succeeded",
            what="the embedded worker's sync",
        )
        view = httpx.get(
            f"http://127.0.0.1:{port}/v1/occasions/{made.occasion_id}/integrations/connections/{made.connection_id}",
            headers={"Authorization": f"Bearer {made.token}"},
        ).json()["connection"]
        assert (view["health"], view["last_sync_status"]) == ("healthy", "succeeded")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'tovplus_sync_runs_total{outcome="succeeded"} 1.0' in metrics
        assert scheduler.current_leader(rt) is not None
    finally:
        code = serve.stop(sig, timeout=15)
    output = serve.output()
    assert code in (0, -sig, 128 + sig), output[-3000:]
    assert "Application shutdown complete" in output
    assert "background worker" in output
    assert "stopped" in output
    assert scheduler.current_leader(rt) is None  # it handed the scheduler lease back on the way out
    assert "Traceback" not in output, output[-3000:]


def test_a_worker_killed_mid_sync_loses_nothing_and_the_run_completes_exactly_once(
    rt, proc_settings, sim, tmp_path
):
    env = env_for(proc_settings)
    first = Proc(["worker", "--threads", "2"], env, tmp_path / "worker-1.log")
    second: Proc | None = None
    try:
        sim.control("slow", delay_seconds=30)  # the first worker's sync hangs at the partner
        made = make_connection(rt, sim.url, interval=3600)
        wait_for(
            lambda: sim.stats()["requests"] >= 1 and runs(rt, made.connection_id)[0].state == "running",
            timeout=30,
            what="the first worker to be mid-sync",
        )
        (run,) = runs(rt, made.connection_id)
        assert run.lease_owner is not None
        assert f":{first.pid}:" in run.lease_owner
        first.popen.send_signal(signal.SIGKILL)
        first.popen.wait(10)
        sim.control("ok")

        second = Proc(["worker", "--threads", "2"], env, tmp_path / "worker-2.log")
        wait_for(
            lambda: runs(rt, made.connection_id)[0].state == "succeeded",
            timeout=30,
            what="the second worker to take the run back and finish it",
        )
        (done,) = runs(rt, made.connection_id)  # the same run, not a new one
        assert done.id == run.id
        assert done.attempt == 2
        assert done.lease_owner is not None
        assert f":{second.pid}:" in done.lease_owner
        assert activity_of(rt, made.connection_id, "sync.started") == []  # one entry per run
        assert len(activity_of(rt, made.connection_id, "sync.completed")) == 1
        assert activity_of(rt, made.connection_id, "sync.failed") == []
        assert len(records(rt, made.connection_id)) == 4
        row = connection(rt, made.connection_id)
        assert (row.health, row.last_sync_status) == ("healthy", "succeeded")
        assert row.next_sync_at is not None
        assert row.next_sync_at > utcnow()
    finally:
        first.stop(signal.SIGKILL)
        if second is not None:
            code = second.stop(signal.SIGTERM)
            assert code in (0, -15), second.output()[-3000:]


@pytest.mark.no_db
def test_the_worker_command_refuses_an_unmigrated_database(tmp_path):
    from tovplus.runtime.keyring import generate_key

    empty = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'empty.db'}",
        queue_url=f"sqlite:///{tmp_path / 'queue.db'}",
        secret_keys=generate_key(),
    )
    env = env_for(empty)
    proc = Proc(["worker"], env, tmp_path / "worker.log")
    assert proc.popen.wait(30) == 2
    proc.stop()
    assert "tovplus db upgrade" in proc.output()
