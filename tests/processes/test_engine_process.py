"""A ``tovplus worker`` whose sync engine holds many runs at once is SIGKILLed: the reaper takes every
leased run back, a second worker finishes each exactly once, and the queued ones were never drained
into the dead process's memory."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.support.sync import (
    Proc,
    Sim,
    activity_of,
    env_for,
    make_connection,
    planner,
    queue_url_for,
    runs,
    simulator,
    tuned,
    wait_for,
)
from tovplus.db.models import SyncRun
from tovplus.partner_sim import generated_key
from tovplus.runtime import Runtime, build_runtime
from tovplus.settings import Settings

pytestmark = pytest.mark.slow

CONNECTIONS = 12
CONCURRENCY = 5


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
        sync_http_timeout_seconds=40.0,
    )


@pytest.fixture
def rt(proc_settings: Settings) -> Iterator[Runtime]:
    runtime = build_runtime(proc_settings)
    yield runtime
    runtime.close()


def _states(rt: Runtime) -> dict[str, int]:
    with rt.db.read() as session:
        return dict(session.execute(select(SyncRun.state, func.count()).group_by(SyncRun.state)).all())


def test_a_killed_engine_s_runs_are_taken_back_and_finish_exactly_once(rt, proc_settings, sim, tmp_path):
    sim.add_accounts("kill", CONNECTIONS)
    sim.control("slow", delay_seconds=30)  # every sync hangs at the partner
    env = env_for(proc_settings, TOVPLUS_SYNC_CONCURRENCY=str(CONCURRENCY))
    first = Proc(["worker", "--threads", "2"], env, tmp_path / "worker-1.log")
    second: Proc | None = None
    try:
        who = planner(rt)
        made = [
            make_connection(
                rt,
                sim.url,
                account_id=f"kill-{i:06d}",
                api_key=generated_key(f"kill-{i:06d}"),
                interval=3600,
                who=who,
            )
            for i in range(CONNECTIONS)
        ]
        wait_for(
            lambda: (
                _states(rt) == {"running": CONCURRENCY, "queued": CONNECTIONS - CONCURRENCY}
                and sim.stats()["requests"] >= CONCURRENCY
            ),
            timeout=30,
            what="the engine to hold its bound of runs at the partner",
        )
        # more runs than queue threads are in flight, and no more than the engine's bound
        assert _states(rt) == {"running": CONCURRENCY, "queued": CONNECTIONS - CONCURRENCY}
        owners = {r.lease_owner for m in made for r in runs(rt, m.connection_id) if r.state == "running"}
        assert len(owners) == 1
        assert f":{first.pid}:" in owners.pop()
        first.popen.send_signal(signal.SIGKILL)
        first.popen.wait(10)
        sim.control("ok")

        second = Proc(["worker", "--threads", "2"], env, tmp_path / "worker-2.log")
        wait_for(
            lambda: _states(rt) == {"succeeded": CONNECTIONS},
            timeout=60,
            what="the second worker to finish every run",
        )
        for m in made:
            (run,) = runs(rt, m.connection_id)  # the same run each, not a new one
            assert run.lease_owner is not None
            assert f":{second.pid}:" in run.lease_owner
            assert len(activity_of(rt, m.connection_id, "sync.completed")) == 1
            assert activity_of(rt, m.connection_id, "sync.failed") == []
        attempts = sorted(runs(rt, m.connection_id)[0].attempt for m in made)
        # the killed process held CONCURRENCY runs (a second attempt each); the rest were still queued
        assert attempts == [1] * (CONNECTIONS - CONCURRENCY) + [2] * CONCURRENCY
    finally:
        first.stop(signal.SIGKILL)
        if second is not None:
            code = second.stop(signal.SIGTERM)
            assert code in (0, -15), second.output()[-3000:]
