"""Sync throughput: 10,000 connection syncs by one embedded process, beside Huey's no-op throughput.

Set-up: the embedded defaults — the app's SQLite file, Huey's SQLite queue — and the printing
partner simulator (``tovplus partner-sim``) as a second process on loopback, with one account
per connection (two orders each). The measured process runs what ``tovplus serve`` runs in
the background: a :class:`~tovplus.worker.BackgroundWorker` (its Huey consumer threads, its
scheduler loop). The clock starts when every connection becomes due and stops when the
database holds a succeeded run for each: the scheduler's ticks, the queue, the claim, two HTTP
requests to the partner, the decryption, the one finishing transaction (records, health,
``last_sync_at``, activity, outbox) all count. Afterwards the stored records are counted.

Baseline, same run, same consumer threads and queue storage: Huey executing the same number
of no-op tasks (queued in one batch), i.e. what the queue alone costs.

Target: 10,000 syncs in under 60 s. ``python -m bench sync [--quick]`` (2,000 syncs).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select, update

from bench import Figure
from bench._harness import ROOT, bench_occasion, free_port, server
from tovplus.db.ids import new_id
from tovplus.db.migrate import upgrade
from tovplus.db.models import Connection, SyncedRecord, SyncRun
from tovplus.db.types import utcnow
from tovplus.partner_sim import generated_key
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.keyring import generate_key
from tovplus.services import credentials
from tovplus.settings import Settings
from tovplus.worker import BackgroundWorker, create_huey, enqueue_many
from tovplus.worker.runner import _EmbeddedConsumer

TARGET_SECONDS = 60.0
FULL = 10_000
QUICK = 2_000


def _connections(rt: Runtime, partner_url: str, count: int) -> None:
    """``count`` enabled connections, not yet due, each with its own partner account and API key."""
    later = utcnow() + timedelta(days=1)
    user_id, occasion_id = bench_occasion(rt)
    for start in range(0, count, 1000):
        with rt.db.write() as session:
            rows = []
            for i in range(start, min(count, start + 1000)):
                rows.append(
                    {
                        "id": new_id("con"),
                        "occasion_id": occasion_id,
                        "integration_key": "printing_partner",
                        "state": "enabled",
                        "health": "unknown",
                        "health_reasons": [],
                        "sync_health": "unknown",
                        "sync_health_reasons": [],
                        "config": {"account_id": f"bench-{i:06d}", "api_base_url": partner_url},
                        "scope_type": "occasion",
                        "action_keys": ["occasion.read"],
                        "next_sync_at": later,
                        "created_by": user_id,
                        "created_at": utcnow(),
                        "updated_at": utcnow(),
                        "version": 1,
                    }
                )
            session.execute(insert(Connection), rows)
            for row in rows:
                account = row["config"]["account_id"]
                credentials.store_secret(session, rt.keyring, row["id"], "api_key", generated_key(account))


def _count(rt: Runtime, query: object) -> int:
    with rt.db.read() as session:
        return int(session.scalar(query) or 0)  # type: ignore[call-overload]


def _syncs(base: Path, count: int, threads: int) -> tuple[float, int]:
    port = free_port()
    partner_url = f"http://127.0.0.1:{port}"
    sim = [str(ROOT / ".venv" / "bin" / "tovplus"), "partner-sim", "--port", str(port)]
    with server(sim, env={}, ready_url=f"{partner_url}/healthz"):
        r = httpx.post(
            f"{partner_url}/_control/accounts",
            json={"prefix": "bench", "count": count, "orders": 2},
            timeout=60,
        )
        r.raise_for_status()
        settings = Settings(
            environment="test",
            data_dir=base,
            database_url=f"sqlite:///{base / 'tovplus.db'}",
            queue_url=f"sqlite:///{base / 'queue.db'}",
            secret_keys=generate_key(),
            allow_private_urls=True,
            scheduler_tick_seconds=0.5,
            worker_threads=threads,
            log_level="WARNING",
        )
        rt = build_runtime(settings)
        try:
            upgrade(rt.db.engine)
            _connections(rt, partner_url, count)
            worker = BackgroundWorker(rt).start()
            try:
                started = time.perf_counter()
                with rt.db.write() as session:
                    session.execute(update(Connection).values(next_sync_at=utcnow()))
                done = select(func.count()).select_from(SyncRun).where(SyncRun.state == "succeeded")
                deadline = started + 600
                while _count(rt, done) < count:
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"only {_count(rt, done)} of {count} syncs finished in 600 s")
                    time.sleep(0.1)
                seconds = time.perf_counter() - started
            finally:
                worker.stop()
            stored = _count(rt, select(func.count()).select_from(SyncedRecord))
            failed = _count(rt, select(func.count()).select_from(SyncRun).where(SyncRun.state != "succeeded"))
            if failed:
                raise RuntimeError(f"{failed} runs did not succeed")
            return seconds, stored
        finally:
            rt.close()


def _noop(base: Path, count: int, threads: int) -> float:
    settings = Settings(data_dir=base, queue_url=f"sqlite:///{base / 'noop-queue.db'}")
    huey = create_huey(settings)
    executed = [0]
    lock = threading.Lock()

    @huey.task(name="bench.noop")
    def noop(_: str) -> None:
        with lock:
            executed[0] += 1

    enqueue_many(huey, [noop.s(str(i)) for i in range(count)])
    consumer = _EmbeddedConsumer(
        huey,
        workers=threads,
        worker_type="thread",
        periodic=False,
        initial_delay=0.05,
        backoff=1.5,
        max_delay=1.0,
        scheduler_interval=1,
    )
    started = time.perf_counter()
    consumer.start()
    while executed[0] < count:
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    consumer.stop(graceful=True)
    huey.storage.close()
    return seconds


def run(quick: bool = False) -> list[Figure]:
    count = QUICK if quick else FULL
    threads = Settings().worker_threads
    with tempfile.TemporaryDirectory(prefix="tovplus-bench-sync-") as tmp:
        base = Path(tmp)
        noop_seconds = _noop(base, count, threads)
        seconds, stored = _syncs(base, count, threads)
    if stored != 2 * count:
        raise RuntimeError(f"expected {2 * count} stored records, found {stored}")
    target = TARGET_SECONDS * count / FULL
    return [
        Figure(
            name=f"{count:,} connection syncs, one embedded process ({threads} threads, SQLite)",
            value=seconds,
            unit="s",
            baseline_name=f"Huey: {count:,} no-op tasks, same threads and storage",
            baseline=noop_seconds,
            target=f"< {target:.0f} s",
            passed=seconds < target,
        ),
        Figure(
            name="sync throughput, one embedded process",
            value=count / seconds,
            unit="syncs/s",
            baseline_name="Huey no-op tasks/s",
            baseline=count / noop_seconds,
            target=f">= {FULL / TARGET_SECONDS:.0f} syncs/s",
            passed=count / seconds >= FULL / TARGET_SECONDS,
        ),
    ]


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    for figure in run(quick="--quick" in sys.argv):
        print(figure)
