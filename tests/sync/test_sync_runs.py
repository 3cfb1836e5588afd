"""Sync runs against the partner simulator over real HTTP: what is stored, health, activity, faults."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.sync import (
    Sim,
    activity_of,
    connection,
    free_port,
    kinds,
    make_connection,
    records,
    runs,
    simulator,
    tuned,
)
from tovplus.db.models import Connection, SyncRun
from tovplus.db.types import utcnow
from tovplus.errors import Forbidden
from tovplus.partner_sim import BackgroundServer
from tovplus.runtime import Runtime, build_runtime
from tovplus.services import sync as syncs
from tovplus.services import webhooks
from tovplus.services.sync import scheduler
from tovplus.settings import Settings

WORKER = "test-worker"


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator() as s:
        yield s


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = build_runtime(tuned(settings, sync_http_timeout_seconds=0.5))
    yield runtime
    runtime.close()


def queue(rt: Runtime, connection_id: str) -> str:
    with rt.db.write() as session:
        run_id, created = syncs.enqueue_run(session, connection_id, trigger="manual", requested_by="test")
    assert created
    return run_id


def run_until_final(rt: Runtime, run_id: str, *, limit: int = 6) -> list[syncs.RunOutcome]:
    """Execute a run, waiting out each retry delay, until it succeeds or fails."""
    outcomes = []
    for _ in range(limit):
        outcome = syncs.execute_run(rt, run_id, worker_id=WORKER)
        outcomes.append(outcome)
        if outcome.state != "retrying":
            return outcomes
        assert outcome.retry_at is not None
        time.sleep(max(0.0, (outcome.retry_at - utcnow()).total_seconds()) + 0.01)
    raise AssertionError(f"run did not finish: {outcomes}")


# --- success ---------------------------------------------------------------------------------------


def test_a_sync_stores_orders_moves_health_and_records_activity(rt, sim):
    made = make_connection(rt, sim.url)
    run_id = queue(rt, made.connection_id)
    outcome = syncs.execute_run(rt, run_id, worker_id=WORKER)
    assert outcome.state == "succeeded"
    assert outcome.records == 4

    stored = records(rt, made.connection_id)
    assert sorted(stored) == [f"demo-account-ord-000{i}" for i in range(1, 5)]
    first = stored["demo-account-ord-0001"]
    assert first.kind == "print_order"
    assert first.data["status"] == "received"
    assert first.source_updated_at is not None

    row = connection(rt, made.connection_id)
    assert row.last_sync_status == "succeeded"
    assert row.last_sync_at is not None
    assert abs((utcnow() - row.last_sync_at).total_seconds()) < 30
    assert row.health == "healthy"
    assert row.sync_health_reasons == []
    assert row.last_success_at is not None
    # the next scheduled sync is one adapter interval (15 min) away
    assert row.next_sync_at is not None
    assert timedelta(minutes=14) < row.next_sync_at - row.last_sync_at <= timedelta(minutes=15)

    (run,) = runs(rt, made.connection_id)
    assert (run.state, run.attempt, run.records_written, run.lease_owner) == ("succeeded", 1, 4, WORKER)
    assert run.lease_expires_at is None
    assert run.finished_at is not None

    # one entry per run: no sync.started before it
    assert kinds(rt, made.connection_id)[-2:] == ["connection.enabled", "sync.completed"]
    (completed,) = activity_of(rt, made.connection_id, "sync.completed")
    assert completed.actor == "system"
    assert completed.details["sync_run_id"] == run_id
    assert completed.details["records_written"] == 4
    assert completed.details["health"] == "healthy"
    assert completed.details["previous_health"] == "unknown"
    assert "4 print orders" in completed.summary
    assert "demo-printer-api-key-0001" not in json.dumps([completed.details, completed.summary])

    # the partner saw the stored key as a bearer token, and both reads
    assert sim.stats()["account_reads"] == {"demo-account": 1}
    assert sim.stats()["order_reads"] == {"demo-account": 1}


def test_the_next_sync_only_asks_for_orders_updated_since_the_last_success(rt, sim):
    seen: list[str | None] = []
    original = sim.state.orders

    def spy(account, since):  # type: ignore[no-untyped-def]
        seen.append(since.isoformat() if since else None)
        return original(account, since)

    sim.state.orders = spy  # type: ignore[method-assign]
    made = make_connection(rt, sim.url)
    assert syncs.execute_run(rt, queue(rt, made.connection_id), worker_id=WORKER).state == "succeeded"
    watermark = connection(rt, made.connection_id).last_success_at
    assert syncs.execute_run(rt, queue(rt, made.connection_id), worker_id=WORKER).state == "succeeded"
    assert seen[0] is None
    assert seen[1] is not None
    assert watermark is not None
    assert seen[1] == watermark.replace(microsecond=0).isoformat()


def test_orders_that_moved_at_the_partner_are_updated_and_never_regress(settings):
    now = [1_800_000_000.0]
    rt = build_runtime(tuned(settings))
    try:
        with simulator(step_seconds=10, clock=lambda: now[0]) as sim:
            made = make_connection(rt, sim.url)
            syncs.execute_run(rt, queue(rt, made.connection_id), worker_id=WORKER)
            assert records(rt, made.connection_id)["demo-account-ord-0001"].data["status"] == "received"
            now[0] += 35  # three and a half steps later
            # the watermark is the real time of the last sync; ask for everything again
            with rt.db.write() as session:
                session.execute(update(Connection).values(last_success_at=None))
            outcome = syncs.execute_run(rt, queue(rt, made.connection_id), worker_id=WORKER)
            assert outcome.state == "succeeded"
            moved = records(rt, made.connection_id)["demo-account-ord-0001"]
            assert moved.data["status"] == "printing"
            now[0] -= 30  # a partner answering with stale data must not move records back
            with rt.db.write() as session:
                session.execute(update(Connection).values(last_success_at=None))
            syncs.execute_run(rt, queue(rt, made.connection_id), worker_id=WORKER)
            assert records(rt, made.connection_id)["demo-account-ord-0001"].data["status"] == "printing"
    finally:
        rt.close()


# --- faults ------------------------------------------------------------------------------------------


def test_partner_500s_are_retried_with_backoff_then_the_sync_recovers(rt, sim):
    made = make_connection(rt, sim.url)
    sim.control("error500", times=2)
    run_id = queue(rt, made.connection_id)
    outcomes = run_until_final(rt, run_id)
    assert [o.state for o in outcomes] == ["retrying", "retrying", "succeeded"]
    (run,) = runs(rt, made.connection_id)
    assert (run.state, run.attempt) == ("succeeded", 3)
    assert kinds(rt, made.connection_id)[-3:] == ["sync.retrying", "sync.retrying", "sync.completed"]
    retry = activity_of(rt, made.connection_id, "sync.retrying")[0]
    assert "HTTP 500" in retry.details["error"]
    assert connection(rt, made.connection_id).health == "healthy"
    assert sim.stats()["statuses"]["500"] == 2


def test_a_retry_is_not_claimed_before_its_time(rt, sim):
    slow = build_runtime(tuned(rt.settings, sync_retry_delays=(30.0,)))
    try:
        made = make_connection(slow, sim.url)
        sim.control("error500", times=1)
        run_id = queue(slow, made.connection_id)
        first = syncs.execute_run(slow, run_id, worker_id=WORKER)
        assert first.state == "retrying"
        assert first.retry_at is not None
        assert timedelta(seconds=23) < first.retry_at - utcnow() < timedelta(seconds=37)
        early = syncs.execute_run(slow, run_id, worker_id="another-worker")
        assert early.state == "skipped"
        assert sim.stats()["requests"] == 1
    finally:
        slow.close()


def test_partner_500s_until_retries_run_out_make_health_failing(rt, sim):
    made = make_connection(rt, sim.url)
    sim.control("error500")
    outcomes = run_until_final(rt, queue(rt, made.connection_id))
    assert [o.state for o in outcomes] == ["retrying", "retrying", "failed"]
    row = connection(rt, made.connection_id)
    assert (row.health, row.last_sync_status) == ("failing", "failed")
    assert row.last_sync_at is not None
    assert "HTTP 500" in row.health_reasons[0]
    assert "3 attempts" in row.health_reasons[0]
    (failed,) = activity_of(rt, made.connection_id, "sync.failed")
    assert failed.details["health"] == "failing"
    # ... and the next success makes it healthy again
    sim.control("ok")
    assert syncs.execute_run(rt, queue(rt, made.connection_id), worker_id=WORKER).state == "succeeded"
    row = connection(rt, made.connection_id)
    assert (row.health, row.health_reasons, row.last_sync_status) == ("healthy", [], "succeeded")
    (completed,) = activity_of(rt, made.connection_id, "sync.completed")
    assert completed.details["previous_health"] == "failing"


def test_a_partner_that_does_not_answer_in_time_is_retried(rt, sim):
    made = make_connection(rt, sim.url)
    sim.control("slow", delay_seconds=2.0, times=1)
    outcomes = run_until_final(rt, queue(rt, made.connection_id))
    # the 0.5 s timeout cut the 2 s answer short: had it waited, the first attempt would have succeeded
    assert [o.state for o in outcomes] == ["retrying", "succeeded"]
    retry = activity_of(rt, made.connection_id, "sync.retrying")[0]
    assert "did not answer in time" in retry.details["error"]


def test_a_refused_connection_is_retried_then_failing(rt):
    made = make_connection(rt, f"http://127.0.0.1:{free_port()}")
    outcomes = run_until_final(rt, queue(rt, made.connection_id))
    assert [o.state for o in outcomes] == ["retrying", "retrying", "failed"]
    row = connection(rt, made.connection_id)
    assert row.health == "failing"
    assert "Could not reach the printer" in row.health_reasons[0]


def test_rejected_credentials_fail_at_once_without_a_retry_storm(rt, sim):
    made = make_connection(rt, sim.url)
    sim.control("unauthorized")
    outcome = syncs.execute_run(rt, queue(rt, made.connection_id), worker_id=WORKER)
    assert outcome.state == "failed"
    assert sim.stats()["requests"] == 1  # one request, no retries
    (run,) = runs(rt, made.connection_id)
    assert (run.state, run.attempt) == ("failed", 1)
    assert run.next_attempt_at is not None  # unchanged: it was never re-queued
    row = connection(rt, made.connection_id)
    assert (row.health, row.last_sync_status, row.state) == ("failing", "failed", "enabled")
    assert len(row.health_reasons) == 1
    assert "API key" in row.health_reasons[0]
    assert "enter a current API key" in row.health_reasons[0]
    # turning failing also tells the planners (services/notifications.py)
    assert kinds(rt, made.connection_id)[-3:] == ["connection.enabled", "sync.failed", "notice.failing"]
    # the scheduler's reaper does not bring it back either
    assert scheduler.reap(rt, now=utcnow() + timedelta(hours=1), grace=0) == []


def test_a_suspended_account_is_drift_degraded_with_a_reason_and_records_still_count(rt, sim):
    made = make_connection(rt, sim.url)
    sim.control("suspended")
    outcome = syncs.execute_run(rt, queue(rt, made.connection_id), worker_id=WORKER)
    assert outcome.state == "succeeded"
    row = connection(rt, made.connection_id)
    assert row.health == "degraded"
    assert row.last_sync_status == "succeeded"
    assert len(row.health_reasons) == 1
    assert "suspended" in row.health_reasons[0]
    assert len(records(rt, made.connection_id)) == 4
    (completed,) = activity_of(rt, made.connection_id, "sync.completed")
    assert completed.details["drift"] == row.health_reasons
    sim.control("ok")
    syncs.execute_run(rt, queue(rt, made.connection_id), worker_id=WORKER)
    assert connection(rt, made.connection_id).health == "healthy"


def test_another_account_id_at_the_partner_is_drift(rt, sim):
    made = make_connection(rt, sim.url)
    sim.control("mismatch")
    syncs.execute_run(rt, queue(rt, made.connection_id), worker_id=WORKER)
    row = connection(rt, made.connection_id)
    assert row.health == "degraded"
    assert "another-account" in row.health_reasons[0]


def test_an_account_unknown_to_the_partner_fails_as_drift_without_retries(rt, sim):
    made = make_connection(rt, sim.url, account_id="no-such-account")
    outcome = syncs.execute_run(rt, queue(rt, made.connection_id), worker_id=WORKER)
    assert outcome.state == "failed"
    row = connection(rt, made.connection_id)
    assert (row.health, row.last_sync_status) == ("degraded", "failed")
    assert "does not know this account" in row.health_reasons[0]
    assert sim.stats()["requests"] == 1


# --- exactly once, and the rules around it --------------------------------------------------------


def test_a_run_taken_back_while_it_ran_cannot_complete_twice(rt, sim):
    made = make_connection(rt, sim.url)
    run_id = queue(rt, made.connection_id)
    claim = syncs.claim_run(rt, run_id, "worker-a")
    assert isinstance(claim, syncs.Claim)
    # worker-a stalls past its lease; the reaper re-queues, worker-b runs it to the end
    with rt.db.write() as session:
        session.execute(update(SyncRun).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert scheduler.reap(rt) == [run_id]
    assert syncs.execute_run(rt, run_id, worker_id="worker-b").state == "succeeded"
    # worker-a wakes up and tries to finish: discarded
    late = syncs.finish_run(
        rt,
        claim,
        syncs.call_adapter(rt.registry.get("printing_partner"), _ctx(rt, claim), {}),
        worker_id="worker-a",
    )
    assert late.state == "lost"
    assert len(activity_of(rt, made.connection_id, "sync.completed")) == 1
    (run,) = runs(rt, made.connection_id)
    assert (run.state, run.attempt, run.lease_owner) == ("succeeded", 2, "worker-b")


def _ctx(rt: Runtime, claim: syncs.Claim) -> Any:
    from tovplus.integrations.contract import SyncContext

    return SyncContext(
        connection_id=claim.connection_id,
        occasion_id=claim.occasion_id,
        config=claim.config,
        secrets=claim.secrets,
        http=syncs.partner_http_client(rt.settings),
        last_success_at=None,
        now=utcnow(),
    )


def test_a_run_is_claimed_by_one_worker_only(rt, sim):
    made = make_connection(rt, sim.url)
    run_id = queue(rt, made.connection_id)
    first = syncs.claim_run(rt, run_id, "worker-a")
    second = syncs.claim_run(rt, run_id, "worker-b")
    assert isinstance(first, syncs.Claim)
    assert isinstance(second, syncs.RunOutcome)
    assert second.state == "skipped"
    assert syncs.execute_run(rt, run_id, worker_id="worker-b").state == "skipped"
    assert syncs.execute_run(rt, "run_unknown", worker_id="worker-b").state == "skipped"


def test_the_lease_keeper_renews_the_runs_it_works_on_and_notices_lost_ones(rt, sim):
    made = make_connection(rt, sim.url)
    run_id = queue(rt, made.connection_id)
    claim = syncs.claim_run(rt, run_id, "worker-a")
    assert isinstance(claim, syncs.Claim)
    before = runs(rt, made.connection_id)[0].lease_expires_at
    keeper = syncs.LeaseKeeper(rt, "worker-a", interval=3600)
    keeper.track(run_id)
    try:
        time.sleep(0.02)
        assert keeper.renew_now() == 1
        after = runs(rt, made.connection_id)[0].lease_expires_at
        assert before is not None
        assert after is not None
        assert after > before
        with rt.db.write() as session:
            session.execute(update(SyncRun).values(lease_owner="worker-b"))
        assert keeper.renew_now() == 0
        assert keeper.lost == {run_id}
    finally:
        keeper.stop()


def test_a_connection_disabled_while_it_synced_stores_nothing(rt, sim, api):
    made = make_connection(rt, sim.url)
    run_id = queue(rt, made.connection_id)
    claim = syncs.claim_run(rt, run_id, WORKER)
    assert isinstance(claim, syncs.Claim)
    r = api.patch(made.token, made.occasion_id, made.connection_id, state="disabled")
    assert r.status_code == 200, r.text
    verdict = syncs.call_adapter(rt.registry.get("printing_partner"), _ctx(rt, claim), {})
    assert syncs.finish_run(rt, claim, verdict, worker_id=WORKER).state == "failed"
    assert records(rt, made.connection_id) == {}
    row = connection(rt, made.connection_id)
    assert (row.state, row.last_sync_at, row.health) == ("disabled", None, "unknown")
    (run,) = runs(rt, made.connection_id)
    assert run.state == "failed"
    assert "disabled or revoked" in (run.error or "")


def test_a_queued_run_of_a_revoked_connection_is_dropped(rt, sim, api):
    made = make_connection(rt, sim.url)
    run_id = queue(rt, made.connection_id)
    assert api.patch(made.token, made.occasion_id, made.connection_id, state="revoked").status_code == 200
    outcome = syncs.execute_run(rt, run_id, worker_id=WORKER)
    assert outcome.state == "failed"
    assert sim.stats()["requests"] == 0
    assert "sync.started" not in kinds(rt, made.connection_id)


def test_an_edit_after_a_sync_keeps_the_sync_verdict_unless_settings_change(rt, sim, api):
    made = make_connection(rt, sim.url)
    sim.control("suspended")
    syncs.execute_run(rt, queue(rt, made.connection_id), worker_id=WORKER)
    r = api.patch(made.token, made.occasion_id, made.connection_id, action_keys=["occasion.read"])
    assert r.status_code == 200, r.text
    body = r.json()["connection"]
    assert (body["health"], body["last_sync_status"]) == ("degraded", "succeeded")
    assert body["health_reasons"] == connection(rt, made.connection_id).sync_health_reasons


@pytest.mark.parametrize("change", ["config", "secrets"])
def test_a_sync_whose_settings_changed_while_it_ran_stores_nothing(rt, sim, api, change):
    made = make_connection(rt, sim.url)
    run_id = queue(rt, made.connection_id)
    claim = syncs.claim_run(rt, run_id, WORKER)
    assert isinstance(claim, syncs.Claim)
    edit: dict[str, Any] = (
        {"config": {"account_id": "another-account"}}
        if change == "config"
        else {"secrets": {"api_key": "a-brand-new-api-key-0002"}}
    )
    assert api.patch(made.token, made.occasion_id, made.connection_id, **edit).status_code == 200
    verdict = syncs.call_adapter(rt.registry.get("printing_partner"), _ctx(rt, claim), {})
    outcome = syncs.finish_run(rt, claim, verdict, worker_id=WORKER)
    assert outcome.state == "discarded"
    assert records(rt, made.connection_id) == {}
    row = connection(rt, made.connection_id)
    assert (row.last_sync_at, row.sync_health) == (None, "unknown")
    assert row.next_sync_at is not None
    assert row.next_sync_at <= utcnow()  # due again, with the new settings
    (run,) = runs(rt, made.connection_id)
    assert run.state == "failed"
    assert "edited while it synced" in (run.error or "")


# --- outward safety ------------------------------------------------------------------------------------


@pytest.mark.no_db
def test_the_partner_client_refuses_private_addresses_and_plain_http_unless_allowed(tmp_path):
    strict = Settings(data_dir=tmp_path, allow_private_urls=False, sync_http_timeout_seconds=1.5)
    client = syncs.partner_http_client(strict)
    with pytest.raises(Forbidden, match="non-public"):
        client.get(f"https://127.0.0.1:{free_port()}/accounts/x")
    with pytest.raises(Forbidden, match="non-public"):
        client.get("https://localhost:1/accounts/x")
    with pytest.raises(Forbidden, match="https"):
        client.get("http://93.184.215.14/accounts/x")
    assert client.timeout.read == 1.5
    assert client.follow_redirects is False
    assert client is syncs.partner_http_client(strict)  # one pooled client per process


@pytest.mark.no_db
def test_the_shared_partner_client_keeps_no_cookies_between_connections(tmp_path):
    seen: list[str | None] = []

    async def partner(request: Request) -> Response:
        seen.append(request.headers.get("cookie"))
        response = Response("{}", media_type="application/json")
        response.set_cookie("session", "account-a-session")
        return response

    client = syncs.partner_http_client(Settings(data_dir=tmp_path, allow_private_urls=True))
    with BackgroundServer(Starlette(routes=[Route("/x", partner)])) as server:
        client.get(f"{server.url}/x")
        client.get(f"{server.url}/x")
    assert seen == [None, None]


def test_a_partner_url_that_became_private_fails_the_sync_without_contacting_it(rt, sim, settings):
    made = make_connection(rt, sim.url)
    strict = build_runtime(tuned(settings, allow_private_urls=False))
    try:
        outcome = syncs.execute_run(strict, queue(strict, made.connection_id), worker_id=WORKER)
    finally:
        strict.close()
    assert outcome.state == "failed"
    assert sim.stats()["requests"] == 0
    row = connection(rt, made.connection_id)
    assert row.health == "failing"
    assert row.sync_health_reasons == [r for r in row.health_reasons if "not allowed" in r]
    assert len(row.sync_health_reasons) == 1


# --- the webhook outbox ----------------------------------------------------------------------------------


class Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []

        async def hook(request: Request) -> Response:
            self.requests.append((dict(request.headers), await request.body()))
            return Response(status_code=204)

        self.app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])


def test_a_completed_sync_delivers_a_signed_webhook_without_secrets(rt, sim):
    made = make_connection(rt, sim.url)
    receiver = Receiver()
    with BackgroundServer(receiver.app) as server:
        _endpoint, signing_secret = webhooks.create_endpoint(
            rt,
            made.caller,
            made.occasion_id,
            url=f"{server.url}/hook",
            event_types=["integration.sync_completed"],
        )
        outcome = syncs.execute_run(rt, queue(rt, made.connection_id), worker_id=WORKER)
        assert outcome.state == "succeeded"
        assert len(outcome.delivery_ids) == 1
        webhooks.deliver(rt, outcome.delivery_ids[0], worker_id=WORKER)
    (headers, body) = receiver.requests[0]
    assert headers["webhook-id"] == outcome.delivery_ids[0]
    key = base64.b64decode(signing_secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert f"v1,{expected}" in headers["webhook-signature"].split(" ")
    payload = json.loads(body)
    assert payload["type"] == "integration.sync_completed"
    data = payload["data"]
    assert data["connection_id"] == made.connection_id
    assert data["occasion_id"] == made.occasion_id
    assert data["integration_key"] == "printing_partner"
    assert data["status"] == "succeeded"
    assert data["last_sync_at"] == connection(rt, made.connection_id).last_sync_at.strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert "demo-printer-api-key-0001" not in body.decode()


def test_a_failed_sync_also_reports_to_subscribers_and_a_retry_does_not(rt, sim):
    made = make_connection(rt, sim.url)
    webhooks.create_endpoint(
        rt,
        made.caller,
        made.occasion_id,
        url="http://127.0.0.1:9/hook",
        event_types=["integration.sync_completed"],
    )
    sim.control("error500", times=1)
    run_id = queue(rt, made.connection_id)
    outcomes = run_until_final(rt, run_id)
    assert [len(o.delivery_ids) for o in outcomes] == [0, 1]
    sim.control("unauthorized")
    failed = syncs.execute_run(rt, queue(rt, made.connection_id), worker_id=WORKER)
    assert failed.state == "failed"
    assert len(failed.delivery_ids) == 1
    with rt.db.read() as session:
        from tovplus.db.models import WebhookDelivery

        delivery = session.get(WebhookDelivery, failed.delivery_ids[0])
        assert delivery is not None
        assert delivery.payload["data"]["status"] == "failed"


def test_manual_sync_through_the_api_runs_on_an_immediate_queue(settings, sim, api, runtime):
    from tovplus.worker import BackgroundWorker

    worker = BackgroundWorker(runtime)  # memory:// queue: a task runs inside the call that queues it
    assert worker.huey.immediate
    made = make_connection(runtime, sim.url)
    r = api.client.post(
        f"/v1/occasions/{made.occasion_id}/integrations/connections/{made.connection_id}/sync",
        headers=api.auth(made.token),
    )
    assert r.status_code == 202, r.text
    run_id = r.json()["sync_run_id"]
    (run,) = runs(runtime, made.connection_id)
    assert (run.id, run.state) == (run_id, "succeeded")
    view = api.client.get(
        f"/v1/occasions/{made.occasion_id}/integrations/connections/{made.connection_id}",
        headers=api.auth(made.token),
    ).json()["connection"]
    assert view["last_sync_status"] == "succeeded"
    assert view["health"] == "healthy"
    listed = api.client.get(
        f"/v1/occasions/{made.occasion_id}/integrations/connections/{made.connection_id}/records",
        headers=api.auth(made.token),
    ).json()["records"]
    assert {r["kind"] for r in listed} == {"print_order"}
    assert len(listed) == 4


def test_metrics_count_sync_outcomes_and_queue_depth(rt, sim, client):
    made = make_connection(rt, sim.url)
    before = _metric(client.get("/metrics").text, 'tovplus_sync_runs_total{outcome="succeeded"}')
    syncs.execute_run(rt, queue(rt, made.connection_id), worker_id=WORKER)
    queue(rt, made.connection_id)
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert _metric(r.text, 'tovplus_sync_runs_total{outcome="succeeded"}') == before + 1
    assert _metric(r.text, 'tovplus_queue_depth{kind="sync_runs_queued"}') == 1
    assert _metric(r.text, "tovplus_sync_run_duration_seconds_count") >= 1


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_httpx_is_the_client_the_adapter_gets(rt, sim):
    """Connection reuse: every sync of a process goes through one pooled client."""
    client = syncs.partner_http_client(rt.settings)
    assert isinstance(client, httpx.Client)
    made = make_connection(rt, sim.url)
    syncs.execute_run(rt, queue(rt, made.connection_id), worker_id=WORKER)
    syncs.execute_run(rt, queue(rt, made.connection_id), worker_id=WORKER)
    assert syncs.partner_http_client(rt.settings) is client
