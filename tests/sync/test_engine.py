"""The sync engine (tovplus.worker.engine): many runs in flight, batched claims and finishes.

Correctness only (no timing): every run finishes exactly once, the bound is never passed, a run
taken over while it ran is discarded, and v1 blocking adapters run unchanged in the pool.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from tests.support.sync import Sim, activity_of, make_connection, records, runs, simulator, tuned, wait_for
from tovplus.db.models import SyncRun, WebhookDelivery
from tovplus.db.types import utcnow
from tovplus.integrations.adapters.printing_partner import PrintingPartnerAdapter
from tovplus.integrations.contract import SyncContext, SyncResult
from tovplus.integrations.registry import AdapterRegistry
from tovplus.runtime import Runtime, build_runtime
from tovplus.services import sync as syncs
from tovplus.services import webhooks
from tovplus.services.sync import scheduler
from tovplus.settings import Settings
from tovplus.worker.engine import SyncEngine


class GatedPrinter(PrintingPartnerAdapter):
    """The printing partner's v1 (blocking) adapter, held at a gate; counts calls in flight."""

    gate = threading.Event()
    lock = threading.Lock()
    in_flight = 0
    most_in_flight = 0

    def sync(self, ctx: SyncContext) -> SyncResult:
        cls = type(self)
        with cls.lock:
            cls.in_flight += 1
            cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
        try:
            assert cls.gate.wait(30), "the test never opened the gate"
            return super().sync(ctx)
        finally:
            with cls.lock:
                cls.in_flight -= 1


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator() as s:
        yield s


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = build_runtime(tuned(settings))
    yield runtime
    runtime.close()


@pytest.fixture
def gated_rt(settings: Settings) -> Iterator[Runtime]:
    registry = AdapterRegistry()
    registry.register(GatedPrinter)
    GatedPrinter.gate.clear()
    GatedPrinter.in_flight = GatedPrinter.most_in_flight = 0
    runtime = build_runtime(tuned(settings), registry=registry)
    yield runtime
    GatedPrinter.gate.set()
    runtime.close()


class Retries:
    """Records the retries the engine asks the queue for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, datetime]] = []

    def __call__(self, run_id: str, retry_at: datetime) -> None:
        self.asked.append((run_id, retry_at))


def engine_for(rt: Runtime, concurrency: int, retries: Retries | None = None) -> SyncEngine:
    keeper = syncs.LeaseKeeper(rt, "engine-worker")
    return SyncEngine(
        rt,
        worker_id="engine-worker",
        keeper=keeper,
        concurrency=concurrency,
        schedule_retry=retries or Retries(),
    ).start()


def queued(rt: Runtime, connection_id: str) -> str:
    with rt.db.write() as session:
        run_id, created = syncs.enqueue_run(session, connection_id, trigger="manual", requested_by="test")
    assert created
    return run_id


def connections(rt: Runtime, sim: Sim, count: int, events: list[str] | None = None) -> list[str]:
    """``count`` enabled connections of one occasion (with ``events``, a webhook endpoint of that
    occasion subscribed to them)."""
    sim.add_accounts("eng", count)
    from tovplus.partner_sim import generated_key

    made = make_connection(rt, sim.url, state="draft")
    if events:
        webhooks.create_endpoint(
            rt, made.caller, made.occasion_id, url="https://hooks.example.com/tov", event_types=events
        )
    ids = [made.connection_id]
    for i in range(1, count):
        ids.append(
            make_connection(
                rt,
                sim.url,
                account_id=f"eng-{i:06d}",
                api_key=generated_key(f"eng-{i:06d}"),
                state="draft",
                who=(made.caller, made.token),
                occasion_id=made.occasion_id,
            ).connection_id
        )
    _enable(rt, ids)
    return ids


def _enable(rt: Runtime, connection_ids: list[str]) -> None:
    from tovplus.db.models import Connection

    with rt.db.write() as session:
        session.execute(
            update(Connection)
            .where(Connection.id.in_(connection_ids))
            .values(state="enabled", next_sync_at=None)
        )


def test_many_runs_through_the_engine_finish_exactly_once(rt, sim):
    ids = connections(rt, sim, 30)
    run_ids = [queued(rt, cid) for cid in ids]
    engine = engine_for(rt, concurrency=8)
    try:
        # four queue threads hand the ids over, each id twice (a duplicate queue message is harmless)
        handed = [run_ids[i::4] + run_ids[i::4] for i in range(4)]
        threads = [threading.Thread(target=lambda ids=ids: [engine.submit(r) for r in ids]) for ids in handed]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert engine.wait_idle(60)
    finally:
        engine.stop()
    assert engine.peak <= 8
    with rt.db.read() as session:
        states = dict(session.execute(select(SyncRun.state, func.count()).group_by(SyncRun.state)).all())
    assert states == {"succeeded": 30}
    for cid in ids:
        (run,) = runs(rt, cid)
        assert (run.attempt, run.lease_owner) == (1, "engine-worker")
        assert run.records_written == len(records(rt, cid)) >= 2
        assert len(activity_of(rt, cid, "sync.completed")) == 1
    assert engine.claims_written == 60  # every hand-over was claimed through the batch writer
    assert engine.finishes_written == 30  # and each run finished once


def test_the_engine_never_holds_more_than_its_bound(gated_rt, sim):
    rt = gated_rt
    ids = connections(rt, sim, 7)
    run_ids = [queued(rt, cid) for cid in ids]
    engine = engine_for(rt, concurrency=3)
    try:
        submitter = threading.Thread(target=lambda: [engine.submit(r) for r in run_ids])
        submitter.start()
        wait_for(lambda: GatedPrinter.in_flight == 3, what="three adapter calls in flight")
        # full: the queue thread waits, nothing more is taken from the queue into memory
        assert (engine.held, engine.submitted) == (3, 3)
        assert submitter.is_alive()
        with rt.db.read() as session:
            assert session.scalar(select(func.count()).where(SyncRun.state == "running")) == 3
        GatedPrinter.gate.set()
        submitter.join(30)
        assert engine.wait_idle(30)
    finally:
        GatedPrinter.gate.set()
        engine.stop()
    assert (engine.peak, GatedPrinter.most_in_flight, engine.submitted) == (3, 3, 7)
    assert all(runs(rt, cid)[0].state == "succeeded" for cid in ids)


def test_a_run_taken_over_while_the_engine_ran_it_is_discarded(gated_rt, sim):
    rt = gated_rt
    (cid,) = connections(rt, sim, 1)
    run_id = queued(rt, cid)
    engine = engine_for(rt, concurrency=2)
    try:
        engine.submit(run_id)
        wait_for(lambda: GatedPrinter.in_flight == 1, what="the adapter call")
        engine.keeper.untrack(run_id)  # this worker stalls: its lease runs out, another takes the run
        with rt.db.write() as session:
            session.execute(update(SyncRun).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        assert scheduler.reap(rt) == [run_id]
        other = syncs.claim_run(rt, run_id, "worker-b")
        assert isinstance(other, syncs.Claim)
        GatedPrinter.gate.set()
        assert engine.wait_idle(30)  # the engine's result: lost, nothing written
        assert activity_of(rt, cid, "sync.completed") == []
        verdict = syncs.call_adapter(rt.registry.get("printing_partner"), _ctx(rt, other), {})
        assert syncs.finish_run(rt, other, verdict, worker_id="worker-b").state == "succeeded"
    finally:
        engine.stop()
    (run,) = runs(rt, cid)
    assert (run.state, run.attempt, run.lease_owner) == ("succeeded", 2, "worker-b")
    assert len(activity_of(rt, cid, "sync.completed")) == 1


def test_a_batch_finish_discards_only_the_run_taken_over(rt, sim):
    ids = connections(rt, sim, 3)
    run_ids = [queued(rt, cid) for cid in ids]
    claims = syncs.claim_runs(rt, [*run_ids, run_ids[0]], "worker-a")
    assert [type(c).__name__ for c in claims] == ["Claim", "Claim", "Claim", "RunOutcome"]
    assert isinstance(claims[3], syncs.RunOutcome)
    assert claims[3].state == "skipped"  # the same id twice in one batch is claimed once
    held = [c for c in claims[:3] if isinstance(c, syncs.Claim)]
    with rt.db.write() as session:  # worker-a lost the middle one to the reaper
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_ids[1])
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert scheduler.reap(rt) == [run_ids[1]]
    adapter = rt.registry.get("printing_partner")
    attempts = [(c, syncs.call_adapter(adapter, _ctx(rt, c), {})) for c in held]
    outcomes = syncs.finish_runs(rt, attempts, worker_id="worker-a")
    assert [o.state for o in outcomes] == ["succeeded", "lost", "succeeded"]
    assert [bool(records(rt, cid)) for cid in ids] == [True, False, True]
    assert [runs(rt, cid)[0].state for cid in ids] == ["succeeded", "queued", "succeeded"]
    assert [len(activity_of(rt, cid, "sync.completed")) for cid in ids] == [1, 0, 1]


def test_one_batch_claims_and_finishes_together_and_every_finish_emits_its_events(rt, sim):
    # the SQLite engine's one writer: a batch mixes finishes and claims; the occasion's endpoints
    # are looked up once per batch, and every finished run still gets its own deliveries
    events = ["integration.sync_completed", "integration.records_changed"]
    ids = connections(rt, sim, 4, events=events)
    run_ids = [queued(rt, cid) for cid in ids]
    claims = syncs.write_runs(rt, run_ids[:3], worker_id="worker-a")
    held = [c for c in claims if isinstance(c, syncs.Claim)]
    assert len(held) == 3
    adapter = rt.registry.get("printing_partner")
    attempts = [(c, syncs.call_adapter(adapter, _ctx(rt, c), {})) for c in held]
    answers = syncs.write_runs(rt, [attempts[2], run_ids[3], attempts[0], attempts[1]], worker_id="worker-a")
    assert [type(a).__name__ for a in answers] == ["RunOutcome", "Claim", "RunOutcome", "RunOutcome"]
    finished = [a for a in answers if isinstance(a, syncs.RunOutcome)]
    assert [o.state for o in finished] == ["succeeded"] * 3
    assert all(len(o.delivery_ids) == 2 for o in finished)  # health_changed is not subscribed
    assert [runs(rt, cid)[0].state for cid in ids] == ["succeeded"] * 3 + ["running"]
    with rt.db.read() as session:
        payloads = [d.payload for d in session.scalars(select(WebhookDelivery))]
    sent = sorted((p["type"], p["data"]["connection_id"]) for p in payloads)
    assert sent == sorted((event, cid) for event in events for cid in ids[:3])


def test_the_engine_asks_the_queue_for_a_retry(rt, sim):
    (cid,) = connections(rt, sim, 1)
    run_id = queued(rt, cid)
    sim.control("error500", times=1)
    retries = Retries()
    engine = engine_for(rt, concurrency=2, retries=retries)
    try:
        engine.submit(run_id)
        assert engine.wait_idle(30)
        assert [r for r, _ in retries.asked] == [run_id]
        (run,) = runs(rt, cid)
        assert (run.state, run.attempt) == ("queued", 1)
        wait_for(lambda: utcnow() >= retries.asked[0][1], what="the retry's time")
        engine.submit(run_id)  # what the queue does at retry_at
        assert engine.wait_idle(30)
    finally:
        engine.stop()
    (run,) = runs(rt, cid)
    assert (run.state, run.attempt) == ("succeeded", 2)
    assert len(activity_of(rt, cid, "sync.retrying")) == 1


def test_a_stopping_engine_takes_nothing_new(rt, sim):
    (cid,) = connections(rt, sim, 1)
    run_id = queued(rt, cid)
    engine = engine_for(rt, concurrency=2)
    assert engine.stop()
    assert engine.submit(run_id) is False
    (run,) = runs(rt, cid)
    assert run.state == "queued"  # left in the table: the reaper hands it out again


def _ctx(rt: Runtime, claim: syncs.Claim) -> SyncContext:
    return SyncContext(
        connection_id=claim.connection_id,
        occasion_id=claim.occasion_id,
        config=claim.config,
        secrets=claim.secrets,
        http=syncs.partner_http_client(rt.settings),
        last_success_at=None,
        now=utcnow(),
    )
