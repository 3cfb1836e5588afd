"""Callbacks under concurrency: parallel duplicates, two writers racing, group commit, limits."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.callbacks.test_callbacks import Conn, count, inbound, make_conn, order
from tests.conftest import Api
from tovplus.db.models import Activity, CallbackDelivery, SyncedRecord
from tovplus.runtime import Runtime
from tovplus.runtime.group_commit import GroupCommitWriter, WriterStopped
from tovplus.runtime.ratelimit import RateLimiter
from tovplus.services.callbacks import CallbackOutcome, CallbackService, InboundCallback


def _parallel(n: int, fn: Any) -> list[Any]:
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


# --- over HTTP ------------------------------------------------------------------------------------


def test_copies_arriving_at_once_are_stored_once(api: Api, runtime: Runtime):
    conn = make_conn(api)
    responses = _parallel(12, lambda i: conn.post(order(status=f"s{i}"), delivery="same-moment"))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 11 + [202], statuses
    ids = {r.json()["activity_id"] for r in responses}
    assert len(ids) == 1, "every copy must name the first copy's activity"
    assert count(runtime, CallbackDelivery) == 1
    assert count(runtime, Activity, kind="callback.received") == 1
    assert count(runtime, SyncedRecord) == 1


def test_many_distinct_callbacks_at_once_are_all_committed(api: Api, runtime: Runtime):
    conn = make_conn(api)
    responses = _parallel(
        16, lambda i: [conn.post(order(f"o{i}-{j}"), delivery=f"d{i}-{j}") for j in range(4)]
    )
    flat = [r for batch in responses for r in batch]
    assert [r.status_code for r in flat] == [202] * 64
    assert count(runtime, CallbackDelivery) == 64
    assert count(runtime, SyncedRecord) == 64
    with runtime.db.read() as s:
        stored = set(s.scalars(select(Activity.id).where(Activity.kind == "callback.received")))
    assert {r.json()["activity_id"] for r in flat} == stored


# --- two writers (as two processes would have) racing for one delivery id -----------------------------


def _job(conn: Conn, delivery: str, status: str = "printed") -> InboundCallback:
    return inbound(conn, delivery, order(status=status))


def test_second_writer_waits_for_the_first_and_reports_duplicate(api: Api, runtime: Runtime):
    """Deterministic: transaction A holds the claim open while writer B tries the same delivery."""
    conn = make_conn(api)
    a, b = CallbackService(runtime), CallbackService(runtime)
    try:
        results: list[Any] = []
        with runtime.db.write() as session:
            [first] = a._process(session, [_job(conn, "race", "from-a")])
            assert isinstance(first, CallbackOutcome)
            assert first.status == "accepted"
            other = threading.Thread(
                target=lambda: results.append(b.receive_wait(_job(conn, "race", "from-b")))
            )
            other.start()
            time.sleep(0.3)
            assert results == [], "B must wait for A's transaction (lock or conflicting claim)"
        other.join(30)
        assert results == [CallbackOutcome("duplicate", first.activity_id)]
    finally:
        a.close()
        b.close()
    assert count(runtime, CallbackDelivery) == 1
    assert count(runtime, Activity, kind="callback.received") == 1
    with runtime.db.read() as s:
        assert s.scalar(select(SyncedRecord.data))["status"] == "from-a"


def test_two_writers_racing_store_each_delivery_once(api: Api, runtime: Runtime):
    conn = make_conn(api)
    services = [CallbackService(runtime), CallbackService(runtime)]
    try:
        for n in range(8):
            outcomes = _parallel(
                4, lambda i, n=n: services[i % 2].receive_wait(_job(conn, f"race-{n}", f"s{i}"))
            )
            assert sorted(o.status for o in outcomes) == ["accepted", "duplicate", "duplicate", "duplicate"]
            assert len({o.activity_id for o in outcomes}) == 1
    finally:
        for service in services:
            service.close()
    assert count(runtime, CallbackDelivery) == 8
    assert count(runtime, Activity, kind="callback.received") == 8


# --- records ---------------------------------------------------------------------------------------


def test_upsert_records_never_regresses_and_counts_writes(api: Api, runtime: Runtime):
    from datetime import UTC, datetime, timedelta

    from tovplus.integrations.contract import RecordUpsert
    from tovplus.services.records import upsert_records

    conn = make_conn(api)
    t = datetime(2026, 11, 25, 19, 40, tzinfo=UTC)
    with runtime.db.write() as s:
        written = upsert_records(
            s,
            conn.id,
            [
                RecordUpsert("print_order", "a", {"v": 1}, t),
                RecordUpsert("print_order", "a", {"v": 0}, t - timedelta(hours=1)),  # older, same call
                RecordUpsert("print_order", "b", {"v": 1}, None),
            ],
        )
    assert written == 2
    with runtime.db.write() as s:
        written = upsert_records(
            s,
            conn.id,
            [
                RecordUpsert("print_order", "a", {"v": 2}, t - timedelta(seconds=1)),  # older: refused
                # older than b's untimed write, whose version is when it was received: refused
                RecordUpsert("print_order", "b", {"v": 2}, t),
                RecordUpsert("print_order", "c", {"v": 2}, t),
                RecordUpsert("room_assignment", "a", {"v": 2}, None),  # another kind, same id
            ],
        )
    assert written == 2
    with runtime.db.write() as s:
        assert upsert_records(s, conn.id, [RecordUpsert("print_order", "a", {"v": 3}, None)]) == 1
    with runtime.db.read() as s:
        rows = {(r.kind, r.external_id): r for r in s.scalars(select(SyncedRecord))}
        assert rows["print_order", "a"].data == {"v": 3}
        assert rows["print_order", "a"].source_updated_at == t  # an untimed write keeps the stamp
        assert rows["print_order", "b"].data == {"v": 1}
        assert rows["print_order", "b"].source_updated_at is None
        assert len(rows) == 4
        assert s.scalar(select(func.count()).select_from(SyncedRecord)) == 4


# --- the group-commit writer --------------------------------------------------------------------------


@pytest.mark.no_db
def test_writer_batches_what_waits_and_answers_after_commit():
    entered, release = threading.Event(), threading.Event()
    committed: list[int] = []
    batches: list[list[int]] = []

    def commit(jobs: Sequence[int]) -> list[int]:
        batches.append(list(jobs))
        entered.set()
        if len(batches) == 1:
            release.wait(5)
        committed.extend(jobs)
        return [j * 10 for j in jobs]

    writer: GroupCommitWriter[int, int] = GroupCommitWriter(commit)
    answers: dict[int, tuple[int, bool]] = {}

    def submit(j: int) -> None:
        result = writer.submit_wait(j, timeout=10)
        answers[j] = (result, j in committed)  # committed before the answer arrived?

    threads = [threading.Thread(target=submit, args=(0,))]
    threads[0].start()
    assert entered.wait(5)
    for j in range(1, 11):
        t = threading.Thread(target=submit, args=(j,))
        t.start()
        threads.append(t)
    time.sleep(0.2)
    assert answers == {}, "nobody is answered before their batch commits"
    release.set()
    for t in threads:
        t.join(5)
    writer.stop()
    assert batches[0] == [0]
    assert sorted(batches[1]) == list(range(1, 11)), batches  # the ten that waited share one commit
    assert answers == {j: (j * 10, True) for j in range(11)}
    assert writer.stats.batches == 2
    assert writer.stats.jobs == 11


@pytest.mark.no_db
def test_writer_retries_a_failed_batch_job_by_job():
    calls: list[list[str]] = []

    def commit(jobs: Sequence[str]) -> list[str]:
        calls.append(list(jobs))
        if "poison" in jobs:
            raise ValueError("cannot store poison")
        return [j.upper() for j in jobs]

    writer: GroupCommitWriter[str, str] = GroupCommitWriter(commit)
    results = writer._commit([_item(j) for j in ("a", "poison", "b")])
    assert results[0] == "A"
    assert isinstance(results[1], ValueError)
    assert results[2] == "B"
    assert calls == [["a", "poison", "b"], ["a"], ["poison"], ["b"]]
    assert writer.stats.split_batches == 1


def _item(job: Any) -> Any:
    from concurrent.futures import Future

    from tovplus.runtime.group_commit import _Item

    return _Item(job, None, Future())


@pytest.mark.no_db
def test_writer_serves_asyncio_waiters_and_stops_cleanly():
    writer: GroupCommitWriter[int, int] = GroupCommitWriter(lambda jobs: [j + 1 for j in jobs])

    async def main() -> list[int]:
        return list(await asyncio.gather(*(writer.submit(i) for i in range(50))))

    assert asyncio.run(main()) == list(range(1, 51))
    writer.stop()
    assert not writer.running
    with pytest.raises(WriterStopped):
        writer.submit_wait(1, timeout=1)


@pytest.mark.no_db
def test_writer_errors_reach_the_waiter():
    writer: GroupCommitWriter[int, int] = GroupCommitWriter(lambda jobs: [KeyError(j) for j in jobs])
    with pytest.raises(KeyError):
        writer.submit_wait(3, timeout=5)
    writer.stop()


# --- the rate limiter ----------------------------------------------------------------------------------


@pytest.mark.no_db
def test_token_bucket_burst_refill_and_retry_after():
    now = [1000.0]
    limiter = RateLimiter(60, burst=3, clock=lambda: now[0])  # one token a second
    assert [limiter.acquire("c") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("c") == pytest.approx(1.0)
    assert limiter.retry_after("c") == 1
    assert limiter.acquire("other") == 0.0  # per key
    now[0] += 2.5
    assert limiter.acquire("c") == 0.0
    assert limiter.acquire("c") == 0.0
    assert limiter.acquire("c") > 0
    now[0] += 100
    assert [limiter.acquire("c") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # never more than the burst


@pytest.mark.no_db
def test_token_bucket_memory_is_bounded():
    now = [0.0]
    limiter = RateLimiter(60, burst=1, clock=lambda: now[0], max_keys=100)
    for i in range(1000):
        limiter.acquire(f"k{i}")
    assert len(limiter._buckets) <= 100
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)


def test_wal_checkpoints_run_beside_the_writer(api: Api, runtime: Runtime):
    if not runtime.db.is_sqlite:
        pytest.skip("SQLite only")
    conn = make_conn(api)
    service = CallbackService(runtime)
    assert service.checkpointer is not None
    service.checkpointer._interval = 0.02
    service.checkpointer.start()
    try:
        for n in range(5):
            assert service.receive_wait(_job(conn, f"w{n}")).status == "accepted"
        deadline = time.monotonic() + 5
        while service.checkpointer.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert service.checkpointer.checkpoints >= 1
        time.sleep(0.1)  # let it see the last commit
        idle = service.checkpointer.checkpoints
        time.sleep(0.1)
        assert service.checkpointer.checkpoints == idle, "no checkpoints while nothing is written"
    finally:
        service.close()
    assert count(runtime, CallbackDelivery) == 5


@pytest.mark.no_db
def test_batch_ids_look_like_new_id_and_do_not_repeat():
    import re

    from tovplus.db.ids import new_id, new_ids

    shape = re.compile(r"act_[0-9a-hjkmnp-tv-z]{26}")
    reference = new_id("act")
    assert shape.fullmatch(reference)
    ids = [i for _ in range(200) for i in new_ids("act", 37)]
    assert all(shape.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)
    time.sleep(0.002)
    later = new_ids("act", 1)[0]
    assert later[:14] >= reference[:14]  # the time part sorts like new_id's
    assert new_id("act")[:14] >= later[:14]


def test_hot_path_queries_use_indexes(runtime: Runtime):
    """A full scan here would make every batch slower as callback_deliveries grows."""
    from tovplus.db.sql import in_list_sql
    from tovplus.services.callbacks.store import _LOAD_SQL, existing_deliveries_sql

    if not runtime.db.is_sqlite:
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    with runtime.db.read() as session:
        cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        in_list, param = in_list_sql("sqlite", ["a", "b", "d"])
        for sql, params in (
            (existing_deliveries_sql("sqlite", in_list), ["c", param]),
            (_LOAD_SQL + in_list, [param]),
        ):
            steps = [row[3] for row in cursor.execute("EXPLAIN QUERY PLAN " + sql, params)]
            scans = [s for s in steps if s.startswith("SCAN") and "json_each" not in s]  # the list itself
            assert not scans, steps
            assert any(s.startswith("SEARCH") for s in steps), steps


@pytest.mark.no_db
def test_raw_timestamps_are_stored_exactly_as_the_orm_stores_them():
    from datetime import UTC, datetime, timedelta, timezone

    from sqlalchemy.dialects import sqlite

    from tovplus.db.raw import db_time, from_db_time
    from tovplus.db.types import UTCDateTime

    dialect = sqlite.dialect()
    inner = sqlite.DATETIME().bind_processor(dialect)
    for value in (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 11, 25, 19, 40, 0, 123456, tzinfo=UTC),
        datetime(2026, 11, 25, 21, 40, tzinfo=timezone(timedelta(hours=2))),
    ):
        naive = UTCDateTime().process_bind_param(value, dialect)
        assert inner is not None
        assert db_time("sqlite", value) == inner(naive)
        assert from_db_time(db_time("sqlite", value)) == value


@pytest.mark.no_db
def test_writer_fails_a_batch_at_once_when_every_job_would_fail():
    calls: list[list[int]] = []

    class Locked(Exception):
        pass

    def commit(jobs: Sequence[int]) -> list[int]:
        calls.append(list(jobs))
        raise Locked("database is locked")

    writer: GroupCommitWriter[int, int] = GroupCommitWriter(
        commit, split_on=lambda exc: not isinstance(exc, Locked)
    )
    results = writer._commit([_item(j) for j in (1, 2, 3)])
    assert all(isinstance(r, Locked) for r in results)
    assert calls == [[1, 2, 3]], "no job-by-job retries that would each wait on the lock again"


@pytest.mark.no_db
def test_callback_writer_splits_only_on_job_specific_errors():
    import sqlite3

    from sqlalchemy.exc import IntegrityError, OperationalError

    from tovplus.services.callbacks.pipeline import _job_specific

    assert _job_specific(IntegrityError("INSERT", {}, Exception("UNIQUE")))
    assert _job_specific(sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert _job_specific(ValueError("bad value"))
    assert not _job_specific(OperationalError("COMMIT", {}, Exception("database is locked")))
    assert not _job_specific(sqlite3.OperationalError("database is locked"))
