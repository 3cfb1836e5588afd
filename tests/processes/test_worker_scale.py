"""Scale-out on PostgreSQL: two ``tovplus worker`` and two ``tovplus api`` processes sync a few hundred
connections; each due connection is synced once per cycle, and none twice at the same time."""

from __future__ import annotations

import concurrent.futures
import itertools
import signal
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, update

from tests.conftest import BACKEND
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
from tovplus.db.ids import new_id
from tovplus.db.models import Connection, SyncRun
from tovplus.db.types import utcnow
from tovplus.partner_sim import generated_key
from tovplus.runtime import Runtime, build_runtime
from tovplus.services import credentials, occasions
from tovplus.settings import Settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(BACKEND != "postgresql", reason="scale-out runs on PostgreSQL (the PostgreSQL pass)"),
]
CONNECTIONS = 300
MANUAL = 30


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
            lease_seconds=10.0,
            scheduler_tick_seconds=0.2,
        )
    )
    yield runtime
    runtime.close()


def _many_connections(rt: Runtime, sim: Sim, occasion_id: str) -> list[str]:
    """Enabled connections, not due yet, each with its own partner account (bulk: the services'
    create path is tested elsewhere; here only what sync reads matters)."""
    sim.add_accounts("scale", CONNECTIONS, orders=2)
    ids = []
    later = utcnow().replace(year=2100)
    with rt.db.write() as session:
        for i in range(CONNECTIONS):
            cid = new_id("con")
            account = f"scale-{i:06d}"
            session.add(
                Connection(
                    id=cid,
                    occasion_id=occasion_id,
                    integration_key="printing_partner",
                    state="enabled",
                    health="unknown",
                    health_reasons=[],
                    sync_health="unknown",
                    sync_health_reasons=[],
                    config={"account_id": account, "api_base_url": sim.url},
                    scope_type="occasion",
                    action_keys=["occasion.read"],
                    sync_interval_seconds=3600,
                    next_sync_at=later,
                    created_by="test",
                )
            )
            session.flush()
            credentials.store_secret(session, rt.keyring, cid, "api_key", generated_key(account))
            ids.append(cid)
    return ids


def _make_due(rt: Runtime) -> None:
    with rt.db.write() as session:
        session.execute(update(Connection).values(next_sync_at=utcnow()))


def _settled(rt: Runtime, expected_runs: int) -> bool:
    with rt.db.read() as session:
        total = session.scalar(select(func.count()).select_from(SyncRun))
        active = session.scalar(
            select(func.count()).select_from(SyncRun).where(SyncRun.state.in_(("queued", "running")))
        )
    return total is not None and total >= expected_runs and active == 0


def _runs_by_connection(rt: Runtime) -> dict[str, list[SyncRun]]:
    by: dict[str, list[SyncRun]] = defaultdict(list)
    with rt.db.read() as session:
        for run in session.scalars(select(SyncRun).order_by(SyncRun.started_at)):
            by[run.connection_id].append(run)
    return by


def _never_overlapping(by: dict[str, list[SyncRun]]) -> None:
    for runs in by.values():
        for earlier, later in itertools.pairwise(runs):
            assert earlier.finished_at is not None
            assert later.started_at is not None
            assert later.started_at >= earlier.finished_at, (earlier.id, later.id)


def test_two_workers_and_two_apis_sync_each_due_connection_once_per_cycle(rt, sim, tmp_path):
    caller, token = planner(rt)
    with rt.db.write() as session:
        occasion_id = occasions.create_occasion(session, caller, "Scale", date(2027, 6, 12)).id
    ids = _many_connections(rt, sim, occasion_id)
    sim.control("slow", delay_seconds=0.01)  # widen every request, so overlaps would show

    env = env_for(rt.settings, TOVPLUS_WORKER_THREADS="4")
    procs: list[Proc] = []
    try:
        ports = [free_port(), free_port()]
        apis = [Proc(["api", "--port", str(p)], env, tmp_path / f"api-{p}.log") for p in ports]
        workers = [Proc(["worker"], env, tmp_path / f"worker-{i}.log") for i in (1, 2)]
        procs = [*apis, *workers]
        for api, port in zip(apis, ports, strict=True):
            wait_http(f"http://127.0.0.1:{port}/healthz", proc=api, timeout=60)
        for worker in workers:
            wait_for(lambda w=worker: "consuming with" in w.output(), timeout=60, what="worker start")

        # --- cycle 1: every connection due at once --------------------------------------------------
        _make_due(rt)
        wait_for(lambda: _settled(rt, CONNECTIONS), timeout=60, interval=0.2, what="cycle 1")
        by = _runs_by_connection(rt)
        assert sorted(by) == sorted(ids)
        assert {len(r) for r in by.values()} == {1}
        assert {r[0].state for r in by.values()} == {"succeeded"}
        assert {r[0].trigger for r in by.values()} == {"schedule"}
        owners = Counter(r[0].lease_owner.split(":")[1] for r in by.values() if r[0].lease_owner)
        assert set(owners) == {str(w.pid) for w in workers}, owners  # both workers took part
        stats = sim.stats()
        assert stats["account_reads"] == {f"scale-{i:06d}": 1 for i in range(CONNECTIONS)}
        assert stats["max_in_flight_per_account"] == 1

        # --- cycle 2: due again, while "sync now" arrives at both APIs for some of them -----------------
        _make_due(rt)
        picked = ids[:MANUAL]

        def sync_now(args: tuple[int, str]) -> tuple[str, int, str]:
            port, cid = args
            r = httpx.post(
                f"http://127.0.0.1:{port}/v1/occasions/{occasion_id}/integrations/connections/{cid}/sync",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            return cid, r.status_code, r.json().get("sync_run_id", "")

        requests = [(port, cid) for cid in picked for port in ports]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(sync_now, requests))
        assert {status for _, status, _ in answers} == {202}

        def cycle_two_done() -> bool:
            if not _settled(rt, 2 * CONNECTIONS):
                return False
            twice = (
                select(SyncRun.connection_id)
                .group_by(SyncRun.connection_id)
                .having(func.count() >= 2)
                .subquery()
            )
            with rt.db.read() as session:
                return session.scalar(select(func.count()).select_from(twice)) == CONNECTIONS

        wait_for(cycle_two_done, timeout=60, interval=0.2, what="cycle 2")
        by = _runs_by_connection(rt)
        stats = sim.stats()
        for cid in ids:
            runs = by[cid]
            assert {r.state for r in runs} == {"succeeded"}
            if cid not in picked:
                assert len(runs) == 2, [(r.id, r.trigger) for r in runs]
            else:
                # the scheduled run, plus at most one per "sync now" that found no run active
                assert 2 <= len(runs) <= 4
                assert {r.id for r in runs} >= {run_id for c, _, run_id in answers if c == cid}
        # the partner saw exactly one account read per recorded run: no sync ran unrecorded or twice
        account_of = {cid: f"scale-{i:06d}" for i, cid in enumerate(ids)}
        assert stats["account_reads"] == {account_of[cid]: len(by[cid]) for cid in ids}
        assert stats["max_in_flight_per_account"] == 1
        _never_overlapping(by)
    finally:
        codes = [p.stop(signal.SIGTERM, timeout=20) for p in procs]
    logs = "\n".join(p.output()[-2000:] for p in procs)
    assert all(code in (0, -15) for code in codes), logs
    assert "Traceback" not in logs, logs
