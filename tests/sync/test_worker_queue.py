"""The Huey side: queue storage by URL, batched enqueueing, and an embedded worker running real syncs."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from huey.storage import PostgresStorage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import BACKEND
from tests.support.sync import (
    Sim,
    activity_of,
    connection,
    make_connection,
    queue_url_for,
    runs,
    simulator,
    tuned,
    wait_for,
)
from tovplus.errors import ConfigurationError
from tovplus.partner_sim import BackgroundServer
from tovplus.runtime import Runtime, build_runtime
from tovplus.services import sync as syncs
from tovplus.services import webhooks
from tovplus.services.sync import scheduler
from tovplus.settings import Settings
from tovplus.worker import BackgroundWorker, create_huey, enqueue_many


@pytest.mark.no_db
def test_the_queue_storage_follows_the_queue_url(tmp_path: Path):
    from huey import MemoryHuey, RedisHuey

    def huey_for(url: str):  # type: ignore[no-untyped-def]
        return create_huey(Settings(data_dir=tmp_path, queue_url=url))

    memory = huey_for("memory://")
    assert isinstance(memory, MemoryHuey)
    assert memory.immediate
    sqlite_huey = huey_for(f"sqlite:///{tmp_path / 'q' / 'queue.db'}")
    assert not sqlite_huey.immediate
    assert sqlite_huey.results is False
    assert (tmp_path / "q" / "queue.db").exists()
    with sqlite3.connect(tmp_path / "q" / "queue.db") as conn:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert isinstance(huey_for("redis://127.0.0.1:6399/0"), RedisHuey)  # connects lazily
    default = create_huey(Settings(data_dir=tmp_path / "d"))
    assert (tmp_path / "d" / "queue.db").exists()
    assert default.storage.filename.endswith("queue.db")
    with pytest.raises(ConfigurationError, match="TOVPLUS_QUEUE_URL"):
        huey_for("ftp://example.com/queue")


@pytest.mark.no_db
def test_enqueue_many_queues_a_batch_in_one_transaction(tmp_path: Path):
    huey = create_huey(Settings(data_dir=tmp_path, queue_url=f"sqlite:///{tmp_path / 'queue.db'}"))
    seen: list[int] = []

    @huey.task(name="test.collect")
    def collect(value: int) -> None:
        seen.append(value)

    enqueue_many(huey, [collect.s(i) for i in range(250)])
    enqueue_many(huey, [])
    assert huey.pending_count() == 250
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
    assert seen == list(range(250))


def test_the_postgresql_queue_storage_listens_and_batches(request, tmp_path):
    if BACKEND != "postgresql":
        pytest.skip("runs in the PostgreSQL pass")
    url = queue_url_for(request, tmp_path)
    huey = create_huey(Settings(queue_url=url))
    assert isinstance(huey.storage, PostgresStorage)
    seen: list[int] = []

    @huey.task(name="test.collect")
    def collect(value: int) -> None:
        seen.append(value)

    enqueue_many(huey, [collect.s(i) for i in range(20)])
    assert huey.pending_count() == 20
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
    assert seen == list(range(20))
    huey.storage.close()


def test_many_processes_starting_at_once_on_a_new_postgresql_queue_all_start():
    """Creating the queue's tables is serialised (an advisory lock): without it, concurrent
    ``CREATE TABLE IF NOT EXISTS`` lets all but one starter crash on ``pg_type``'s unique index."""
    if BACKEND != "postgresql":
        pytest.skip("runs in the PostgreSQL pass")
    name = f"tovplus_queue_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)
    admin.execute(f'create database "{name}"')
    try:
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        for _ in range(3):  # a new schema each round
            start = threading.Barrier(8)
            failures: list[BaseException] = []

            def starter(start: threading.Barrier, failures: list[BaseException]) -> None:
                start.wait()
                try:
                    create_huey(Settings(queue_url=url)).storage.close()
                except BaseException as exc:
                    failures.append(exc)

            threads = [threading.Thread(target=starter, args=(start, failures)) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert failures == []
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("drop table if exists huey_kv, huey_schedule, huey_task")
    finally:
        admin.execute(f'drop database if exists "{name}" with (force)')
        admin.close()


# --- an embedded worker doing real work ----------------------------------------------------------------


@pytest.fixture
def queue_url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    return queue_url_for(request, tmp_path)


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator() as s:
        yield s


@pytest.fixture
def worker_rt(settings: Settings, queue_url: str) -> Iterator[Runtime]:
    rt = build_runtime(tuned(settings, queue_url=queue_url, worker_threads=2))
    yield rt
    rt.close()


@pytest.fixture
def worker(worker_rt: Runtime) -> Iterator[BackgroundWorker]:
    background = BackgroundWorker(worker_rt).start()
    yield background
    background.stop()


def test_the_embedded_worker_runs_scheduled_manual_and_retried_syncs(worker_rt, worker, sim):
    made = make_connection(worker_rt, sim.url)  # enabled: due at once
    wait_for(
        lambda: connection(worker_rt, made.connection_id).last_sync_status == "succeeded", what="scheduled"
    )
    assert [r.trigger for r in runs(worker_rt, made.connection_id)] == ["schedule"]

    run_id = syncs.request_sync(worker_rt, made.caller, made.occasion_id, made.connection_id)
    wait_for(lambda: runs(worker_rt, made.connection_id)[-1].state == "succeeded", what="manual")
    assert runs(worker_rt, made.connection_id)[-1].id == run_id

    sim.control("error500", times=1)  # the retry is scheduled on the queue for its time
    run_id = syncs.request_sync(worker_rt, made.caller, made.occasion_id, made.connection_id)
    wait_for(lambda: runs(worker_rt, made.connection_id)[-1].state == "succeeded", timeout=10, what="retry")
    last = runs(worker_rt, made.connection_id)[-1]
    assert (last.id, last.attempt) == (run_id, 2)
    assert len(activity_of(worker_rt, made.connection_id, "sync.completed")) == 3
    assert worker.ticker is not None
    assert worker.ticker.leading


def test_stopping_the_worker_hands_leadership_over(worker_rt, sim):
    background = BackgroundWorker(worker_rt).start()
    assert background.ticker is not None
    wait_for(lambda: scheduler.current_leader(worker_rt) == background.worker_id, what="leadership")
    background.stop()
    assert scheduler.current_leader(worker_rt) is None


def test_a_completed_sync_is_delivered_to_webhook_subscribers_through_the_queue(worker_rt, worker, sim):
    received: list[dict[str, str]] = []

    async def hook(request: Request) -> Response:
        received.append(dict(request.headers))
        return Response(status_code=200)

    with BackgroundServer(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as receiver:
        made = make_connection(worker_rt, sim.url, state="draft")
        webhooks.create_endpoint(
            worker_rt,
            made.caller,
            made.occasion_id,
            url=f"{receiver.url}/hook",
            event_types=["integration.sync_completed"],
        )
        from tovplus.services.connections import ConnectionPatch, update_connection

        update_connection(
            worker_rt, made.caller, made.occasion_id, made.connection_id, ConnectionPatch(state="enabled")
        )
        wait_for(lambda: received, what="webhook")
    assert received[0]["webhook-id"].startswith("msg_")
    assert received[0]["webhook-signature"].startswith("v1,")


def test_metrics_are_served_by_the_api(client):
    r = client.get("/metrics")
    assert r.status_code == 200
    assert "tovplus_sync_runs_total" in r.text
    assert "tovplus_queue_depth" in r.text
    assert httpx.Response(200, text=r.text).text.count("# TYPE") >= 4


# --- the Redis queue storage (scale-out option), against the machine's Redis server --------------------


@pytest.fixture
def redis_queue_url() -> Iterator[str]:
    """A uniquely named queue on the local Redis (127.0.0.1:6379, database 0), flushed afterwards."""
    name = f"tovplus-test-{uuid.uuid4().hex[:12]}"
    url = f"redis://127.0.0.1:6379/0?queue={name}"
    yield url
    huey = create_huey(Settings(queue_url=url))
    huey.storage.flush_all()


def test_the_redis_queue_carries_scheduled_and_manual_syncs_to_the_worker(settings, sim, redis_queue_url):
    rt = build_runtime(tuned(settings, queue_url=redis_queue_url, worker_threads=2))
    background = BackgroundWorker(rt).start()
    try:
        assert type(background.huey).__name__ == "RedisHuey"
        made = make_connection(rt, sim.url)  # enabled: the scheduler queues it through Redis
        wait_for(lambda: connection(rt, made.connection_id).last_sync_status == "succeeded", what="scheduled")
        manual = syncs.request_sync(rt, made.caller, made.occasion_id, made.connection_id)
        wait_for(
            lambda: any(r.id == manual and r.state == "succeeded" for r in runs(rt, made.connection_id)),
            what="manual sync over Redis",
        )
        assert [r.trigger for r in runs(rt, made.connection_id)] == ["schedule", "manual"]
        assert background.huey.pending_count() == 0
    finally:
        background.stop()
        rt.close()
