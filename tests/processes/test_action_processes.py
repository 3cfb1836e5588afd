"""Action runs across ``tovplus worker`` processes.

* A worker SIGKILLed while the partner is still answering an export: the reaper takes the run
  back, the next worker sends it again with the same ``Idempotency-Key``, and the simulator
  records one effect (both backends).
* The same for ``guest_messaging.send_invitations`` (OAuth2, the messaging partner): one batch.
* Scale-out (PostgreSQL): two workers, many queued runs (user-asked and event-queued): every run
  finishes exactly once (one ``action.succeeded`` entry each, one effect at the partner each).
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests import factories
from tests.actions.support import guest_list_fault, received
from tests.conftest import BACKEND
from tests.factories import guest
from tests.support.sync import (
    Proc,
    Sim,
    env_for,
    make_connection,
    planner,
    queue_url_for,
    simulator,
    tuned,
    wait_for,
)
from tovplus.db.models import ActionRun, Activity, Connection
from tovplus.runtime import Runtime, build_runtime
from tovplus.services import actions
from tovplus.services.demo_messaging import seed_messaging_demo
from tovplus.settings import Settings
from tovplus.worker import install_dispatcher

pytestmark = pytest.mark.slow


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator() as s:
        yield s


@pytest.fixture
def rt(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Runtime]:
    runtime = build_runtime(
        tuned(
            settings,
            queue_url=queue_url_for(request, tmp_path),
            lease_seconds=2.0,
            scheduler_tick_seconds=0.2,
            action_retry_delays=(0.2, 0.2, 0.2),
        )
    )
    yield runtime
    runtime.close()


def _env(rt: Runtime) -> dict[str, str]:
    return env_for(rt.settings, TOVPLUS_WORKER_THREADS="3", TOVPLUS_ACTION_RETRY_DELAYS="0.2,0.2,0.2")


def _final(rt: Runtime) -> bool:
    with rt.db.read() as session:
        total = session.scalar(select(func.count()).select_from(ActionRun)) or 0
        open_ = session.scalar(
            select(func.count()).select_from(ActionRun).where(ActionRun.state.in_(("queued", "running")))
        )
    return total > 0 and open_ == 0


def test_a_worker_killed_mid_export_is_retried_with_the_same_key_and_the_partner_sees_one_effect(
    rt: Runtime, sim: Sim, tmp_path: Path
) -> None:
    made = make_connection(rt, sim.url, interval=3600)
    guest_list_fault(sim, "slow", times=1, delay_seconds=4.0)  # the first export hangs after it lands
    first = Proc(["worker"], _env(rt), tmp_path / "worker-1.log")
    second: Proc | None = None
    try:
        guest(rt, made.caller, made.occasion_id, "Ola")
        wait_for(lambda: received(sim)["requests"] >= 1, timeout=30, what="the export to reach the partner")
        first.stop(signal.SIGKILL)
        second = Proc(["worker"], _env(rt), tmp_path / "worker-2.log")
        wait_for(lambda: _final(rt), timeout=45, what="the run to finish")
    finally:
        first.stop(signal.SIGKILL)
        if second is not None:
            second.stop()
    with rt.db.read() as session:
        (run,) = session.scalars(select(ActionRun)).all()
        succeeded = session.scalar(
            select(func.count()).select_from(Activity).where(Activity.kind == "action.succeeded")
        )
    assert run.state == "succeeded", (run.error, second.output()[-2000:] if second else "")
    assert run.attempt == 2
    assert succeeded == 1
    got = received(sim)
    assert got["effects"] == 1
    assert got["replays"] >= 1
    assert set(got["idempotency_keys"]) == {run.id}


@pytest.mark.skipif(BACKEND != "postgresql", reason="scale-out runs on PostgreSQL (the PostgreSQL pass)")
def test_two_workers_finish_every_queued_action_exactly_once(rt: Runtime, sim: Sim, tmp_path: Path) -> None:
    who = planner(rt)
    made = [make_connection(rt, sim.url, interval=3600, who=who) for _ in range(20)]
    guest_list_fault(sim, "slow", delay_seconds=0.05)  # widen every request, so overlaps would show
    procs = [Proc(["worker"], _env(rt), tmp_path / f"worker-{i}.log") for i in range(2)]
    try:
        dispatcher = install_dispatcher(rt)
        for m in made:
            guest(rt, m.caller, m.occasion_id, "Ola")
            for n in range(3):
                actions.request_action(
                    rt, m.caller, m.occasion_id, m.connection_id, "export_guests", {}, idempotency_key=f"k{n}"
                )
        wait_for(lambda: _final(rt), timeout=90, interval=0.5, what="every action run to finish")
        dispatcher.huey.storage.close()
    finally:
        for p in procs:
            p.stop()
    with rt.db.read() as session:
        runs = session.scalars(select(ActionRun)).all()
        done = Counter(
            a.details["action_run_id"]
            for a in session.scalars(select(Activity).where(Activity.kind == "action.succeeded"))
        )
    assert len(runs) >= 20 * 4 - 20  # 3 asked + 1 by the event each (an event run may coalesce)
    assert all(r.state == "succeeded" for r in runs), [
        (r.id, r.error) for r in runs if r.state != "succeeded"
    ]
    assert done == Counter({r.id: 1 for r in runs})
    got = received(sim)
    assert got["effects"] == len(runs)
    owners = {r.lease_owner for r in runs}
    assert len(owners) == 2, "both workers took runs"
    httpx.get(f"{sim.url}/healthz", timeout=5)


def test_a_worker_killed_mid_send_sends_the_invitations_once(rt: Runtime, sim: Sim, tmp_path: Path) -> None:
    """``guest_messaging.send_invitations`` (OAuth2): the simulator stores the batch, then answers
    late; the worker is SIGKILLed before it hears; the next worker's attempt, with the same key, gets
    the first answer again and the guests get one batch."""
    messaging = f"{sim.url}/messaging"
    caller, _token = planner(rt)
    occasion_id = factories.occasion(rt, caller)
    guest(rt, caller, occasion_id, "Ola")
    line = seed_messaging_demo(rt, caller, occasion_id, messaging)
    assert "authorized" in line, line
    with rt.db.read() as session:
        connection_id = session.scalars(
            select(Connection.id).where(Connection.integration_key == "guest_messaging")
        ).one()
    control = httpx.post(f"{messaging}/_control", json={"messages_delay_seconds": 4}, timeout=5)
    assert control.status_code == 200, control.text
    first = Proc(["worker"], _env(rt), tmp_path / "worker-1.log")
    second: Proc | None = None
    try:
        actions.request_action(
            rt, caller, occasion_id, connection_id, "send_invitations", {"message": "Join us in June!"}
        )
        wait_for(lambda: len(_messaging(messaging)["messages"]) >= 1, timeout=30, what="the batch to land")
        first.stop(signal.SIGKILL)
        httpx.post(f"{messaging}/_control", json={"messages_delay_seconds": 0}, timeout=5)
        second = Proc(["worker"], _env(rt), tmp_path / "worker-2.log")
        wait_for(lambda: _final(rt), timeout=45, what="the run to finish")
    finally:
        first.stop(signal.SIGKILL)
        if second is not None:
            second.stop()
    with rt.db.read() as session:
        (run,) = session.scalars(select(ActionRun)).all()
    assert run.state == "succeeded", (run.error, second.output()[-2000:] if second else "")
    assert run.attempt == 2
    got = _messaging(messaging)
    assert len(got["messages"]) == 1
    assert got["message_replays"] >= 1
    assert got["idempotency_keys"] == [run.id]
    assert [r["name"] for r in got["messages"][0]["recipients"]] == ["Ola"]


def _messaging(url: str) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(f"{url}/_control/stats", timeout=5).json()
    return stats
