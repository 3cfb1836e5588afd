"""A ``tovplus worker`` SIGKILLed between two pages of a paged pull: the run resumes from its last
checkpoint, fetches no page twice beyond the one in flight, and loses no record (issue 14)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sync import (
    Proc,
    Sim,
    env_for,
    make_connection,
    queue_url_for,
    records,
    runs,
    simulator,
    tuned,
    wait_for,
)
from tovplus.partner_sim import Account
from tovplus.runtime import Runtime, build_runtime
from tovplus.settings import Settings

pytestmark = pytest.mark.slow

ACCOUNT = "crash-paged"
KEY = "crash-paged-api-key-0001"
ORDERS = 30
PAGE = 3


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator() as s:
        s.state.add_account(Account(ACCOUNT, KEY, initial_orders=ORDERS, page_size=PAGE))
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


def test_a_worker_killed_between_pages_resumes_after_the_last_checkpoint(rt, proc_settings, sim, tmp_path):
    env = env_for(proc_settings)
    first = Proc(["worker", "--threads", "1"], env, tmp_path / "worker-1.log")
    second: Proc | None = None
    try:
        sim.control("slow", delay_seconds=0.4)  # each page takes a while: the kill lands between pages
        made = make_connection(rt, sim.url, account_id=ACCOUNT, api_key=KEY, interval=3600)

        def checkpointed() -> bool:
            queued = runs(rt, made.connection_id)
            checkpoint = queued[0].checkpoint if queued else None
            return checkpoint is not None and checkpoint["upserted"] >= 3 * PAGE

        wait_for(checkpointed, timeout=60, interval=0.02, what="three pages checkpointed")
        first.popen.send_signal(signal.SIGKILL)
        first.popen.wait(10)
        (killed,) = runs(rt, made.connection_id)
        stored_at_kill = len(records(rt, made.connection_id))
        assert killed.state == "running"
        assert 3 * PAGE <= stored_at_kill < ORDERS
        sim.control("ok")

        second = Proc(["worker", "--threads", "1"], env, tmp_path / "worker-2.log")
        wait_for(
            lambda: runs(rt, made.connection_id)[0].state == "succeeded",
            timeout=60,
            what="the second worker to resume the run and finish it",
        )
        (done,) = runs(rt, made.connection_id)
        assert done.id == killed.id
        assert done.attempt == 2
        assert done.records_written >= ORDERS
        assert sorted(records(rt, made.connection_id)) == [
            f"{ACCOUNT}-ord-{n:04d}" for n in range(1, ORDERS + 1)
        ]
        tokens = sim.stats()["page_tokens"][ACCOUNT]
        assert tokens[0] is None
        assert None not in tokens[1:]  # the second worker resumed: it never started from page one
        assert len(tokens) - len(set(tokens)) <= 1  # at most the page in flight was fetched twice
        assert set(tokens) == {None} | {f"pt-{n}" for n in range(PAGE, ORDERS, PAGE)}
    finally:
        first.stop(signal.SIGKILL)
        if second is not None:
            second.stop(signal.SIGTERM, timeout=20)
