"""The scheduler (leader lease, due selection by index, one active run per connection) and the reaper."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from tests.conftest import BACKEND
from tests.support.sync import connection, make_connection, planner, runs, tuned
from tovplus.db.models import Connection, Lease, SyncRun
from tovplus.db.types import utcnow
from tovplus.runtime import Runtime, build_runtime
from tovplus.services import sync as syncs
from tovplus.services.connections import ConnectionCreate, create_connection
from tovplus.services.sync import scheduler
from tovplus.settings import Settings
from tovplus.worker import Ticker

URL = "https://printer.example.com/api"


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = build_runtime(tuned(settings, lease_seconds=30.0))
    yield runtime
    runtime.close()


def due_now(rt: Runtime, *connection_ids: str) -> None:
    with rt.db.write() as session:
        session.execute(
            update(Connection).where(Connection.id.in_(connection_ids)).values(next_sync_at=utcnow())
        )


class Recorder:
    def __init__(self) -> None:
        self.runs: list[str] = []
        self.deliveries: list[str] = []
        self.actions: list[str] = []

    def sync_runs(self, run_ids: list[str]) -> None:
        self.runs.extend(run_ids)

    def webhook_deliveries(self, delivery_ids: list[str]) -> None:
        self.deliveries.extend(delivery_ids)

    def action_runs(self, run_ids: list[str]) -> None:
        self.actions.extend(run_ids)


# --- leadership --------------------------------------------------------------------------------------


def test_one_leader_at_a_time_until_its_lease_lapses_or_is_released(rt):
    now = utcnow()
    assert scheduler.acquire_leadership(rt, "a", ttl=10, now=now)
    assert not scheduler.acquire_leadership(rt, "b", ttl=10, now=now)
    assert scheduler.acquire_leadership(rt, "a", ttl=10, now=now + timedelta(seconds=5))  # renewal
    assert not scheduler.acquire_leadership(rt, "b", ttl=10, now=now + timedelta(seconds=14))
    assert scheduler.current_leader(rt, now + timedelta(seconds=14)) == "a"
    assert scheduler.acquire_leadership(rt, "b", ttl=10, now=now + timedelta(seconds=16))  # a lapsed
    assert not scheduler.acquire_leadership(rt, "a", ttl=10, now=now + timedelta(seconds=16))
    scheduler.release_leadership(rt, "b")
    assert scheduler.current_leader(rt) is None
    assert scheduler.acquire_leadership(rt, "a", ttl=10)
    with rt.db.read() as session:
        assert len(session.scalars(select(Lease)).all()) == 1


def test_only_the_leading_ticker_schedules(rt):
    made = make_connection(rt, URL)
    first, second = Recorder(), Recorder()
    a = Ticker(rt, first, "holder-a", interval=1)
    b = Ticker(rt, second, "holder-b", interval=1)
    report_a, report_b = a.tick_once(), b.tick_once()
    assert (report_a.leader, report_b.leader) == (True, False)
    assert len(first.runs) == 1
    assert second.runs == []
    a.stop()  # a clean stop hands leadership over at once
    due_now(rt, made.connection_id)
    with rt.db.write() as session:
        session.execute(update(SyncRun).values(state="succeeded"))
    assert b.tick_once().leader
    assert len(second.runs) == 1
    assert second.runs != first.runs


# --- the tick ----------------------------------------------------------------------------------------


def test_a_tick_queues_one_run_per_due_enabled_syncing_connection(rt, settings):
    who = planner(rt)
    due = make_connection(rt, URL, who=who)
    overridden = make_connection(rt, URL, who=who, interval=120)
    draft = make_connection(rt, URL, who=who, state="draft")
    disabled = make_connection(rt, URL, who=who)
    later = make_connection(rt, URL, who=who)
    venue = create_connection(
        rt,
        who[0],
        due.occasion_id,
        ConnectionCreate(
            "venue_ops",
            config={"venue_id": "hall-1"},
            secrets={"api_token": "venue-token-000001"},
            state="enabled",
        ),
    ).connection["id"]
    now = utcnow()
    with rt.db.write() as session:
        session.execute(
            update(Connection).where(Connection.id == disabled.connection_id).values(state="disabled")
        )
        session.execute(
            update(Connection)
            .where(Connection.id == later.connection_id)
            .values(next_sync_at=now + timedelta(minutes=5))
        )
        # even with a past next_sync_at, an adapter without background sync is never selected
        session.execute(update(Connection).where(Connection.id == venue).values(next_sync_at=now))

    result = scheduler.tick(rt, now=now)
    assert result.due == 2
    assert len(result.run_ids) == 2
    with rt.db.read() as session:
        queued = session.execute(select(SyncRun.connection_id, SyncRun.state, SyncRun.trigger)).all()
    assert sorted(queued) == sorted(
        [(due.connection_id, "queued", "schedule"), (overridden.connection_id, "queued", "schedule")]
    )
    for untouched in (draft, disabled):
        assert runs(rt, untouched.connection_id) == []
    # the tick wrote no connection; a connection with an active run is simply not due
    assert connection(rt, due.connection_id).next_sync_at <= now
    again = scheduler.tick(rt, now=now + timedelta(seconds=1))
    assert (again.due, again.run_ids) == (0, [])


def test_finishing_a_run_makes_the_connection_due_one_interval_later(settings):
    from tests.support.sync import simulator

    rt = build_runtime(tuned(settings))
    plain_rt = build_runtime(tuned(settings, sync_interval_seconds=300))
    try:
        with simulator() as sim:
            who = planner(rt)
            adapter_default = make_connection(rt, sim.url, who=who)
            overridden = make_connection(rt, sim.url, who=who, interval=120)
            for run_id in scheduler.tick(rt).run_ids:
                assert syncs.execute_run(rt, run_id, worker_id="w").state == "succeeded"
            for made, interval in (
                (adapter_default, timedelta(minutes=15)),
                (overridden, timedelta(seconds=120)),
            ):
                row = connection(rt, made.connection_id)
                assert row.last_sync_at is not None
                assert row.next_sync_at == row.last_sync_at + interval
            # the setting overrides the adapter's default, not a connection's own interval
            with rt.db.write() as session:
                session.execute(update(Connection).values(next_sync_at=utcnow()))
            for run_id in scheduler.tick(plain_rt).run_ids:
                assert syncs.execute_run(plain_rt, run_id, worker_id="w").state == "succeeded"
            for made, interval in (
                (adapter_default, timedelta(seconds=300)),
                (overridden, timedelta(seconds=120)),
            ):
                row = connection(rt, made.connection_id)
                assert row.last_sync_at is not None
                assert row.next_sync_at == row.last_sync_at + interval
    finally:
        rt.close()
        plain_rt.close()


def test_a_connection_with_an_active_run_gets_no_second_one(rt):
    made = make_connection(rt, URL)
    first = scheduler.tick(rt).run_ids
    assert len(first) == 1
    due_now(rt, made.connection_id)
    again = scheduler.tick(rt)
    assert (again.due, again.run_ids) == (0, [])
    # a manual "sync now" meanwhile returns the active run instead of queueing another
    with rt.db.write() as session:
        run_id, created = syncs.enqueue_run(session, made.connection_id, trigger="manual", requested_by="x")
    assert (run_id, created) == (first[0], False)
    # the database itself refuses a second active run
    with pytest.raises(IntegrityError, match=r"(?i)unique"), rt.db.write() as session:
        session.add(
            SyncRun(
                id="run_dup",
                connection_id=made.connection_id,
                state="running",
                trigger="manual",
                requested_by="x",
            )
        )
    assert [r.id for r in runs(rt, made.connection_id)] == first


def test_a_tick_handles_more_due_connections_than_one_batch(rt, monkeypatch):
    monkeypatch.setattr(scheduler, "_BATCH", 3)
    who = planner(rt)
    made = [make_connection(rt, URL, who=who) for _ in range(7)]
    result = scheduler.tick(rt)
    assert result.due == 7
    assert len(set(result.run_ids)) == 7
    assert {r.connection_id for m in made for r in runs(rt, m.connection_id)} == {
        m.connection_id for m in made
    }
    with rt.db.write() as session:
        session.execute(update(SyncRun).values(state="succeeded"))
    limited = scheduler.tick(rt, limit=2, now=utcnow() + timedelta(hours=1))
    assert limited.due == 2


def test_the_due_query_is_served_by_the_state_next_sync_at_index(rt):
    query = scheduler.due_connections(["printing_partner"], utcnow(), 1000)
    with rt.db.engine.connect() as conn:
        compiled = query.compile(conn.engine, compile_kwargs={"literal_binds": True})
        if BACKEND == "postgresql":
            conn.execute(text("SET enable_seqscan = off"))
            plan = "\n".join(r[0] for r in conn.execute(text(f"EXPLAIN {compiled}")))
        else:
            plan = "\n".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_connections_state_next_sync_at" in plan, plan


# --- the reaper --------------------------------------------------------------------------------------


def test_the_reaper_requeues_runs_whose_lease_expired_and_gives_up_on_spent_ones(rt):
    who = planner(rt)
    alive, dead, spent = (make_connection(rt, URL, who=who) for _ in range(3))
    ids = scheduler.tick(rt).run_ids
    assert len(ids) == 3
    now = utcnow()
    by_connection = {r.connection_id: r.id for m in (alive, dead, spent) for r in runs(rt, m.connection_id)}
    with rt.db.write() as session:
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == by_connection[alive.connection_id])
            .values(state="running", attempt=1, lease_owner="w", lease_expires_at=now + timedelta(seconds=30))
        )
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == by_connection[dead.connection_id])
            .values(state="running", attempt=1, lease_owner="w", lease_expires_at=now - timedelta(seconds=1))
        )
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == by_connection[spent.connection_id])
            .values(
                state="running",
                attempt=syncs.max_attempts(rt.settings),
                lease_owner="w",
                lease_expires_at=now - timedelta(seconds=1),
            )
        )
    assert scheduler.reap(rt, now=now) == [by_connection[dead.connection_id]]
    (requeued,) = runs(rt, dead.connection_id)
    assert (requeued.state, requeued.lease_owner, requeued.attempt) == ("queued", None, 1)
    assert requeued.next_attempt_at == now
    (given_up,) = runs(rt, spent.connection_id)
    assert given_up.state == "failed"
    assert "kept stopping" in (given_up.error or "")
    # ... and its connection waits one interval instead of being queued again at the next tick
    assert connection(rt, spent.connection_id).next_sync_at == now + timedelta(minutes=15)
    # ... and says so: no stale "retrying" reason stays behind
    row = connection(rt, spent.connection_id)
    assert (row.health, row.last_sync_status) == ("failing", "failed")
    assert "kept stopping" in row.health_reasons[0]
    (untouched,) = runs(rt, alive.connection_id)
    assert untouched.state == "running"
    # a worker may claim the re-queued run again
    assert isinstance(syncs.claim_run(rt, requeued.id, "w2"), syncs.Claim)


def test_the_reaper_hands_out_queued_runs_that_waited_too_long_once_per_grace(rt):
    made = make_connection(rt, URL)
    (run_id,) = scheduler.tick(rt).run_ids
    now = utcnow()
    assert scheduler.reap(rt, now=now, grace=10) == []  # just queued: its message is on the way
    later = now + timedelta(seconds=11)
    assert scheduler.reap(rt, now=later, grace=10) == [run_id]
    assert scheduler.reap(rt, now=later + timedelta(seconds=1), grace=10) == []  # not again at once
    assert scheduler.reap(rt, now=later + timedelta(seconds=11), grace=10) == [run_id]
    assert runs(rt, made.connection_id)[0].state == "queued"


def test_queue_depth_counts_our_tables(rt):
    who = planner(rt)
    first, _second = make_connection(rt, URL, who=who), make_connection(rt, URL, who=who)
    scheduler.tick(rt)
    syncs.claim_run(rt, runs(rt, first.connection_id)[0].id, "w")
    depth = scheduler.queue_depth(rt)
    assert depth["sync_runs_queued"] == 1
    assert depth["sync_runs_running"] == 1
    assert depth["webhook_deliveries_pending"] == 0
