"""Scheduler tick time: 100,000 connections of which 1,000 are due, beside 1,000 connections in all.

One full leader tick as a worker runs it (``Ticker.tick_once``): take the leader lease,
select the due connections through the ``(state, next_sync_at)`` index, insert one queued
run each, move their ``next_sync_at`` on, enqueue the run ids on the Huey queue (one
storage transaction), reap, look for due webhook deliveries, and read the queue depth.
Measured on the embedded SQLite file (Huey on SQLite) and on PostgreSQL (Huey on PostgreSQL);
the median of several ticks, each after resetting the same 1,000 connections to due.

Target: under 100 ms at 100,000 connections, and within 2x of the tick at 1,000 connections.

``python -m bench scheduler [--quick]``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, delete, insert, text, update

from bench import Figure
from bench._harness import bench_occasion
from tovplus.db.ids import new_id
from tovplus.db.migrate import upgrade
from tovplus.db.models import Connection, Lease, SyncRun
from tovplus.db.types import utcnow
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.keyring import generate_key
from tovplus.settings import Settings
from tovplus.worker import BackgroundWorker

DUE = 1000
TICKS = 7
POSTGRES_ADMIN = os.environ.get("TOVPLUS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _populate(rt: Runtime, total: int, due: int) -> list[str]:
    """``total`` enabled printing_partner connections, ``due`` of them due now (bulk Core inserts)."""
    now = utcnow()
    user_id, occasion_id = bench_occasion(rt)
    due_ids: list[str] = []
    batch = 5000
    for start in range(0, total, batch):
        rows = []
        for i in range(start, min(total, start + batch)):
            cid = new_id("con")
            is_due = i % (total // due) == 0 and len(due_ids) < due
            if is_due:
                due_ids.append(cid)
            rows.append(
                {
                    "id": cid,
                    "occasion_id": occasion_id,
                    "integration_key": "printing_partner",
                    "state": "enabled",
                    "health": "healthy",
                    "health_reasons": [],
                    "sync_health": "healthy",
                    "sync_health_reasons": [],
                    "config": {"account_id": f"acct-{i:06d}", "api_base_url": "https://printer.example.com"},
                    "scope_type": "occasion",
                    "action_keys": ["occasion.read"],
                    "next_sync_at": now - timedelta(seconds=5)
                    if is_due
                    else now + timedelta(hours=1, seconds=i),
                    "created_by": user_id,
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
            )
        with rt.db.write() as session:
            session.execute(insert(Connection), rows)
    if rt.db.is_sqlite:
        with rt.db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with rt.db.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    return due_ids


def _reset(rt: Runtime, due_ids: list[str], worker: BackgroundWorker) -> None:
    with rt.db.write() as session:
        session.execute(delete(SyncRun))
        session.execute(delete(Lease))
        session.execute(
            update(Connection)
            .where(Connection.id.in_(due_ids))
            .values(next_sync_at=utcnow() - timedelta(seconds=5))
        )
    worker.huey.flush()


def _ticks(rt: Runtime, due_ids: list[str]) -> tuple[float, int]:
    """Median seconds of a full leader tick, and the runs the last tick queued."""
    worker = BackgroundWorker(rt)  # not started: only its queue, dispatcher and ticker are used
    assert worker.ticker is not None
    times, queued = [], 0
    for _ in range(TICKS):
        _reset(rt, due_ids, worker)
        started = time.perf_counter()
        report = worker.ticker.tick_once()
        times.append(time.perf_counter() - started)
        queued = len(report.scheduled)
        assert report.leader
        assert worker.huey.pending_count() == queued
    worker.huey.storage.close()
    return statistics.median(times), queued


def _measure(database_url: str, queue_url: str, data_dir: Path, total: int) -> float:
    settings = Settings(
        environment="test",
        data_dir=data_dir,
        database_url=database_url,
        queue_url=queue_url,
        secret_keys=generate_key(),
        allow_private_urls=True,
    )
    rt = build_runtime(settings)
    try:
        upgrade(rt.db.engine)
        due_ids = _populate(rt, total, min(DUE, total))
        seconds, queued = _ticks(rt, due_ids)
        assert queued == min(DUE, total), queued
        return seconds
    finally:
        rt.close()


def _postgres_database() -> tuple[str, str]:
    name = f"tovplus_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        POSTGRES_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def _drop_postgres(name: str) -> None:
    admin = create_engine(
        POSTGRES_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def run(quick: bool = False) -> list[Figure]:
    big = 20_000 if quick else 100_000
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="tovplus-bench-scheduler-") as tmp:
        base = Path(tmp)
        results: dict[str, dict[int, float]] = {"sqlite": {}, "postgresql": {}}
        for total in (DUE, big):
            d = base / f"sqlite-{total}"
            results["sqlite"][total] = _measure(
                f"sqlite:///{d / 'tovplus.db'}", f"sqlite:///{d / 'queue.db'}", d, total
            )
            name, url = _postgres_database()
            try:
                results["postgresql"][total] = _measure(
                    url, f"{url}?queue=bench", base / f"pg-{total}", total
                )
            finally:
                _drop_postgres(name)
    for backend, by_total in results.items():
        small, large = by_total[DUE] * 1000, by_total[big] * 1000
        figures.append(
            Figure(
                name=f"scheduler tick, {big:,} connections / {DUE:,} due ({backend})",
                value=large,
                unit="ms",
                baseline_name=f"tick with {DUE:,} connections in all",
                baseline=small,
                target="< 100 ms and < 2x baseline",
                passed=large < 100 and large < 2 * small,
            )
        )
    return figures


if __name__ == "__main__":
    for f in run(quick=False):
        print(f)
