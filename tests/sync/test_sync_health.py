"""Health that tells the truth from the first failed attempt, the paused schedule, Retry-After,
one activity entry per run, and ``integration.health_changed`` on every transition."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests import factories
from tests.support.sync import (
    Sim,
    activity_of,
    connection,
    free_port,
    make_connection,
    runs,
    simulator,
    tuned,
)
from tovplus.db.models import WebhookDelivery
from tovplus.db.types import utcnow
from tovplus.runtime import Runtime, build_runtime
from tovplus.services import connections, webhooks
from tovplus.services import sync as syncs
from tovplus.services.connections import AdminFilters, ConnectionPatch
from tovplus.services.sync import scheduler
from tovplus.settings import Settings

WORKER = "test-worker"


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator() as s:
        yield s


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    # three attempts in all; the retries wait long enough to be seen waiting
    runtime = build_runtime(
        tuned(
            settings, sync_retry_delays=(0.3, 0.3), sync_http_timeout_seconds=1.0, sync_pause_after_failures=3
        )
    )
    yield runtime
    runtime.close()


def queue(rt: Runtime, connection_id: str) -> str:
    with rt.db.write() as session:
        run_id, created = syncs.enqueue_run(session, connection_id, trigger="manual", requested_by="test")
    assert created
    return run_id


def attempt(rt: Runtime, run_id: str) -> syncs.RunOutcome:
    """Run the next attempt of ``run_id`` as soon as it is due."""
    for _ in range(100):
        outcome = syncs.execute_run(rt, run_id, worker_id=WORKER)
        if outcome.state != "skipped" or outcome.retry_at is None:
            return outcome
        wait = (outcome.retry_at - utcnow()).total_seconds()
        time.sleep(max(0.02, min(wait, 0.5)))
    raise AssertionError("the run never became due")


def subscribe(rt: Runtime, made, event_type: str = "integration.health_changed") -> None:
    webhooks.create_endpoint(
        rt, made.caller, made.occasion_id, url="http://127.0.0.1:9/hook", event_types=[event_type]
    )


def health_events(rt: Runtime, occasion_id: str) -> list[dict]:
    with rt.db.read() as session:
        rows = session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.event_type == "integration.health_changed")
            .order_by(WebhookDelivery.id)
        ).all()
        return [r.payload["data"] for r in rows if r.payload["data"]["occasion_id"] == occasion_id]


def test_a_500_makes_the_connection_degraded_at_once_then_failing_then_healthy(rt, sim):
    made = make_connection(rt, sim.url)
    subscribe(rt, made)
    sim.control("error500")
    run_id = queue(rt, made.connection_id)

    first = attempt(rt, run_id)
    assert first.state == "retrying"
    row = connection(rt, made.connection_id)
    assert row.health == "degraded"
    (reason,) = row.health_reasons
    assert reason.startswith("The printer answered HTTP 500. Retrying — attempt 2 of 3, next at ")
    assert first.retry_at is not None
    assert first.retry_at.strftime("%H:%M:%S UTC") in reason
    admin = AdminFilters()
    boss = factories.user(rt, role="admin").caller
    _page, summary = connections.admin_list(rt, boss, admin, limit=1, cursor=None)
    assert (summary.retrying, summary.by_health["degraded"]) == (1, 1)
    page = connections.connection_sync_runs(
        rt, made.caller, made.occasion_id, made.connection_id, limit=5, cursor=None
    )
    (waiting,) = page.items
    assert (waiting.state, waiting.attempts, waiting.error) == (
        "retry_scheduled",
        1,
        "The printer answered HTTP 500.",
    )
    assert waiting.retry_reason == reason
    assert waiting.next_attempt_at is not None

    assert attempt(rt, run_id).state == "retrying"
    assert "attempt 3 of 3" in connection(rt, made.connection_id).health_reasons[0]
    assert attempt(rt, run_id).state == "failed"
    row = connection(rt, made.connection_id)
    assert row.health == "failing"
    assert "Gave up after 3 attempts" in row.health_reasons[0]
    _page, summary = connections.admin_list(rt, boss, admin, limit=1, cursor=None)
    assert (summary.retrying, summary.failing) == (0, 1)

    sim.control("ok")
    assert attempt(rt, queue(rt, made.connection_id)).state == "succeeded"
    assert connection(rt, made.connection_id).health == "healthy"
    moves = [(e["previous_health"], e["health"]) for e in health_events(rt, made.occasion_id)]
    assert moves == [("unknown", "degraded"), ("degraded", "failing"), ("failing", "healthy")]
    event = health_events(rt, made.occasion_id)[0]
    assert set(event) >= {"connection_id", "integration_key", "occasion_id", "health", "previous_health"}
    assert event["health_reasons"] == [reason]


def test_a_refused_connection_names_the_host_never_an_exception_class(rt, sim):
    port = free_port()  # nothing listens there
    made = make_connection(rt, f"http://127.0.0.1:{port}")
    run_id = queue(rt, made.connection_id)
    assert attempt(rt, run_id).state == "retrying"
    row = connection(rt, made.connection_id)
    assert row.health == "degraded"
    assert row.health_reasons[0].startswith("Could not reach the printer at 127.0.0.1. Retrying — attempt 2")
    assert "Error" not in " ".join(row.health_reasons)
    attempt(rt, run_id)
    assert attempt(rt, run_id).state == "failed"
    row = connection(rt, made.connection_id)
    assert row.health == "failing"
    assert "ConnectError" not in (runs(rt, made.connection_id)[0].error or "")


def test_rejected_credentials_are_failing_at_once(rt, sim):
    made = make_connection(rt, sim.url)
    subscribe(rt, made)
    sim.control("unauthorized")
    assert attempt(rt, queue(rt, made.connection_id)).state == "failed"
    row = connection(rt, made.connection_id)
    assert row.health == "failing"
    assert "API key" in row.health_reasons[0]
    assert [e["health"] for e in health_events(rt, made.occasion_id)] == ["failing"]


def test_a_429_is_retried_no_earlier_than_its_retry_after(rt, sim):
    made = make_connection(rt, sim.url)
    sim.control("rate_limited", delay_seconds=3, times=1)
    run_id = queue(rt, made.connection_id)
    outcome = syncs.execute_run(rt, run_id, worker_id=WORKER)
    assert outcome.state == "retrying"
    (run,) = runs(rt, made.connection_id)
    assert run.started_at is not None
    assert run.next_attempt_at is not None
    # the stored retry time, not wall time: at least Retry-After after the attempt ended
    assert run.next_attempt_at - run.started_at >= timedelta(seconds=3)
    assert "busy (HTTP 429)" in (run.error or "")
    assert syncs.execute_run(rt, run_id, worker_id=WORKER).state == "skipped"  # not due yet


def test_the_schedule_pauses_after_n_failed_runs_and_a_manual_sync_resumes_it(rt, sim):
    made = make_connection(rt, sim.url)
    sim.control("unauthorized")
    for _ in range(3):
        assert attempt(rt, queue(rt, made.connection_id)).state == "failed"
    row = connection(rt, made.connection_id)
    assert row.sync_paused_at is not None
    assert row.next_sync_at is None
    assert row.sync_failures_in_row == 3
    assert row.health == "failing"
    assert any("paused after 3 failed syncs in a row" in r for r in row.health_reasons)
    # the scheduler does not queue it, however late it gets
    assert scheduler.tick(rt, now=utcnow() + timedelta(days=1)).run_ids == []

    sim.control("ok")
    run_id = syncs.request_sync(rt, made.caller, made.occasion_id, made.connection_id)
    row = connection(rt, made.connection_id)
    assert (row.sync_paused_at, row.sync_failures_in_row) == (None, 0)
    assert attempt(rt, run_id).state == "succeeded"
    row = connection(rt, made.connection_id)
    assert (row.health, row.health_reasons) == ("healthy", [])
    assert row.next_sync_at is not None


def test_resume_schedule_is_a_no_op_unless_paused(rt, sim):
    made = make_connection(rt, sim.url)
    with rt.db.write() as session:
        assert syncs.resume_schedule(session, made.connection_id) is False


def test_one_activity_entry_per_run_and_identical_successes_fold(rt):
    # The partner's clock runs 5 s behind, so its orders last changed seconds before the first
    # sync began and the next syncs' cursor (to the second) is past them. With the orders changed
    # in the same second as a sync began, the next sync fetches one of them again (the cursor is
    # inclusive, as it should be) and its line differs: this failed one run in ten.
    with simulator(clock=lambda: time.time() - 5) as sim:
        made = make_connection(rt, sim.url)
        for _ in range(3):
            assert attempt(rt, queue(rt, made.connection_id)).state == "succeeded"
    assert activity_of(rt, made.connection_id, "sync.started") == []
    done = activity_of(rt, made.connection_id, "sync.completed")
    # the first stored the orders, the next two found nothing new: one line, counted twice
    assert [d.repeat_count for d in done] == [1, 2]
    assert done[1].details["last_sync_run_id"] == runs(rt, made.connection_id)[-1].id
    page = connections.occasion_activity(
        rt, made.caller, made.occasion_id, connection_id=made.connection_id, limit=10, cursor=None
    )
    assert [a.repeat_count for a in page.items if a.kind == "sync.completed"] == [2, 1]


def test_saving_settings_keeps_the_verdict_with_a_note(rt, sim):
    made = make_connection(rt, sim.url)
    sim.control("unauthorized")
    attempt(rt, queue(rt, made.connection_id))
    connections.update_connection(
        rt, made.caller, made.occasion_id, made.connection_id, ConnectionPatch(secrets={"api_key": "x" * 24})
    )
    row = connection(rt, made.connection_id)
    assert row.health == "failing"
    assert row.health_reasons[-1].startswith("Settings changed since this was found")
