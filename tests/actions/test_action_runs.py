"""Action runs in the background: platform events and coalescing, retries with the same
Idempotency-Key, credentials failing health, the reaper, webhooks and activity."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from tests.actions.support import action_runs, auth, connected, guest_list_fault, received, run_all
from tests.factories import guest
from tests.support.sync import connection, kinds, tuned
from tovplus.db.models import ActionRun, WebhookDelivery
from tovplus.db.types import utcnow
from tovplus.runtime import Runtime
from tovplus.services import actions, occasions, webhooks


def _fast(runtime: Runtime, **changes: Any) -> Runtime:
    return Runtime(
        tuned(runtime.settings, action_retry_delays=(0.0, 0.0), **changes),
        runtime.db,
        runtime.registry,
        runtime.keyring,
    )


def test_a_burst_of_300_guests_queues_a_handful_of_exports_and_the_last_carries_every_guest(
    runtime: Runtime,
) -> None:
    with connected(runtime) as (sim, made):
        with runtime.db.write() as session:
            for i in range(300):
                occasions.create_guest(session, made.caller, made.occasion_id, f"Guest {i:03d}", None)
        guest(runtime, made.caller, made.occasion_id, "One more")  # a second transaction, same burst
        first = actions.dispatch_platform_events(runtime)
        assert len(first) == 1
        assert actions.dispatch_platform_events(runtime) == []  # every event dispatched once
        run_all(runtime)
        got = received(sim)
        lists = got["lists"]["demo-account"][made.occasion_id]["guests"]
        assert len(lists) == 301
        assert got["effects"] == 1
        (run,) = action_runs(runtime, made.connection_id)
        assert run.trigger == "event:guest.created"
        assert run.state == "succeeded"


def test_events_during_a_queued_run_coalesce_and_a_change_after_it_started_queues_one_more(
    runtime: Runtime, client: Any
) -> None:
    with connected(runtime) as (sim, made):
        gid = guest(runtime, made.caller, made.occasion_id, "Ola")
        assert len(actions.dispatch_platform_events(runtime)) == 1
        guest(runtime, made.caller, made.occasion_id, "Kari")
        assert actions.dispatch_platform_events(runtime) == []  # coalesced into the queued one
        run_all(runtime)
        r = client.patch(
            f"/v1/occasions/{made.occasion_id}/guests/{gid}", json={"name": "Ola N."}, headers=auth(made)
        )
        assert r.status_code == 200, r.text
        (second,) = actions.dispatch_platform_events(runtime)
        run_all(runtime)
        runs = action_runs(runtime, made.connection_id)
        assert [r.trigger for r in runs] == ["event:guest.created", "event:guest.updated"]
        assert second == runs[1].id
        names = [g["name"] for g in received(sim)["lists"]["demo-account"][made.occasion_id]["guests"]]
        assert names == ["Ola N.", "Kari"]
        # an unchanged guest emits nothing
        client.patch(
            f"/v1/occasions/{made.occasion_id}/guests/{gid}", json={"name": "Ola N."}, headers=auth(made)
        )
        assert actions.dispatch_platform_events(runtime) == []


def test_a_transient_failure_is_retried_with_the_same_idempotency_key_then_succeeds(runtime: Runtime) -> None:
    rt = _fast(runtime)
    with connected(rt) as (sim, made):
        guest(rt, made.caller, made.occasion_id, "Ola")
        (run_id,) = actions.dispatch_platform_events(rt)
        guest_list_fault(sim, "error500", times=1)
        first = actions.execute_action_run(rt, run_id, worker_id="w1")
        assert first.state == "retrying"
        assert first.retry_at is not None
        second = actions.execute_action_run(rt, run_id, worker_id="w2")
        assert second.state == "succeeded"
        got = received(sim)
        assert got["requests"] == 1  # the 500 was answered before the list was taken
        assert got["idempotency_keys"] == [run_id]
        (run,) = action_runs(rt, made.connection_id)
        assert run.attempt == 2
        assert kinds(rt, made.connection_id).count("action.succeeded") == 1


def test_giving_up_after_the_last_delay_fails_the_run_without_touching_health(runtime: Runtime) -> None:
    rt = _fast(runtime)
    with connected(rt) as (sim, made):
        guest(rt, made.caller, made.occasion_id, "Ola")
        (run_id,) = actions.dispatch_platform_events(rt)
        guest_list_fault(sim, "error500")
        states = [actions.execute_action_run(rt, run_id, worker_id="w").state for _ in range(3)]
        assert states == ["retrying", "retrying", "failed"]
        (run,) = action_runs(rt, made.connection_id)
        assert run.state == "failed"
        assert run.error is not None
        assert "HTTP 500" in run.error
        assert "3 attempts" in run.error
        assert connection(rt, made.connection_id).health != "failing"
        assert actions.execute_action_run(rt, run_id, worker_id="w").state == "skipped"  # finished once


def test_rejected_credentials_fail_at_once_and_set_health_failing(runtime: Runtime) -> None:
    with connected(runtime) as (sim, made):
        guest(runtime, made.caller, made.occasion_id, "Ola")
        (run_id,) = actions.dispatch_platform_events(runtime)
        guest_list_fault(sim, "unauthorized")
        assert actions.execute_action_run(runtime, run_id, worker_id="w").state == "failed"
        row = connection(runtime, made.connection_id)
        assert row.health == "failing"
        assert any("API key" in r for r in row.health_reasons)
        assert "action.failed" in kinds(runtime, made.connection_id)


def test_the_reaper_takes_back_a_dead_workers_run_and_the_retry_sends_the_same_key(runtime: Runtime) -> None:
    rt = _fast(runtime, lease_seconds=1.0)
    with connected(rt) as (sim, made):
        guest(rt, made.caller, made.occasion_id, "Ola")
        (run_id,) = actions.dispatch_platform_events(rt)
        with rt.db.write() as session:  # a worker claimed it and died
            session.execute(
                update(ActionRun)
                .where(ActionRun.id == run_id)
                .values(
                    state="running",
                    attempt=1,
                    lease_owner="dead",
                    lease_expires_at=utcnow() - timedelta(seconds=1),
                )
            )
        again, _ = actions.reap_action_runs(rt)
        assert again == [run_id]
        assert actions.execute_action_run(rt, run_id, worker_id="alive").state == "succeeded"
        assert received(sim)["idempotency_keys"] == [run_id]
        (run,) = action_runs(rt, made.connection_id)
        assert run.attempt == 2


def test_webhooks_action_completed_and_failed_carry_the_contract_fields(runtime: Runtime) -> None:
    with connected(runtime) as (sim, made):
        webhooks.create_endpoint(
            runtime,
            made.caller,
            made.occasion_id,
            url="https://hooks.example.com/tov",
            event_types=["integration.action_completed", "integration.action_failed"],
        )
        guest(runtime, made.caller, made.occasion_id, "Ola")
        (ok_id,) = actions.dispatch_platform_events(runtime)
        assert actions.execute_action_run(runtime, ok_id, worker_id="w").state == "succeeded"
        guest(runtime, made.caller, made.occasion_id, "Kari")
        (bad_id,) = actions.dispatch_platform_events(runtime)
        guest_list_fault(sim, "not_found")
        assert actions.execute_action_run(runtime, bad_id, worker_id="w").state == "failed"
        with runtime.db.read() as session:
            payloads = [d.payload for d in session.query(WebhookDelivery).order_by(WebhookDelivery.id)]
        common = {
            "connection_id",
            "integration_key",
            "occasion_id",
            "action_run_id",
            "action_key",
            "attempts",
        }
        completed, failed = payloads
        assert completed["type"] == "integration.action_completed"
        assert common | {"summary"} <= set(completed["data"])
        assert completed["data"]["action_run_id"] == ok_id
        assert completed["data"]["summary"] == "Sent 1 guest to the printer"
        assert failed["type"] == "integration.action_failed"
        assert common | {"error"} <= set(failed["data"])
        assert failed["data"]["attempts"] == 1
        assert "does not know this account" in failed["data"]["error"]
        assert kinds(runtime, made.connection_id).count("action.queued") == 2


def test_retention_prunes_old_finished_action_runs_but_keeps_the_newest_per_connection(
    runtime: Runtime,
) -> None:
    from tovplus.services import retention

    with connected(runtime) as (_sim, made):
        for _ in range(3):
            guest(runtime, made.caller, made.occasion_id, "Ola")
            actions.dispatch_platform_events(runtime)
            run_all(runtime)
        settings = runtime.settings.model_copy(
            update={"action_run_retention_days": 0.000001, "action_runs_kept_per_connection": 1}
        )
        import time

        time.sleep(0.2)
        report = retention.prune(runtime.db, settings)
        assert {t.table: t.rows for t in report.tables}["action_runs"] == 2
        assert len(action_runs(runtime, made.connection_id)) == 1
