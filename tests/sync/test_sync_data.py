"""Adapter-owned state and pages, deletions, full resync, record ordering and records_changed,
against the partner simulator over real HTTP (issue 14, parts 3-6 and 8b)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from tests.support.sync import Sim, make_connection, records, runs, simulator
from tovplus.db.models import Connection, WebhookDelivery
from tovplus.db.states import SyncTrigger
from tovplus.db.types import utcnow
from tovplus.integrations.contract import RecordUpsert
from tovplus.integrations.sync_state import RecordDelete, RunSuperseded
from tovplus.partner_sim import Account
from tovplus.runtime import Runtime
from tovplus.services import records as record_store
from tovplus.services import sync as syncs
from tovplus.services import webhooks

WORKER = "data-worker"
ACCOUNT = "paged-account"
KEY = "paged-account-api-key-0001"


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator() as s:
        s.state.add_account(Account(ACCOUNT, KEY, initial_orders=7, page_size=3))
        yield s


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    return runtime


def run(rt: Runtime, connection_id: str, trigger: str = SyncTrigger.MANUAL) -> syncs.RunOutcome:
    with rt.db.write() as session:
        run_id, created = syncs.enqueue_run(session, connection_id, trigger=trigger, requested_by="test")
    assert created
    outcome = syncs.execute_run(rt, run_id, worker_id=WORKER)
    assert outcome.state == "succeeded", outcome
    return outcome


def live(rt: Runtime, connection_id: str) -> set[str]:
    return {k for k, r in records(rt, connection_id).items() if r.deleted_at is None}


def deleted(rt: Runtime, connection_id: str) -> set[str]:
    return {k for k, r in records(rt, connection_id).items() if r.deleted_at is not None}


def order(n: int) -> str:
    return f"{ACCOUNT}-ord-{n:04d}"


# --- pages and state ---------------------------------------------------------------------------------


def test_a_paged_pull_follows_next_page_token_checkpoints_each_page_and_keeps_its_state(rt, sim):
    made = make_connection(rt, sim.url, account_id=ACCOUNT, api_key=KEY)
    outcome = run(rt, made.connection_id)
    assert live(rt, made.connection_id) == {order(n) for n in range(1, 8)}
    assert sim.stats()["page_tokens"][ACCOUNT] == [None, "pt-3", "pt-6"]
    (done,) = runs(rt, made.connection_id)
    assert done.records_written == 7 == outcome.records  # the checkpointed pages count too
    assert done.checkpoint is not None
    assert done.checkpoint["upserted"] == 6  # two checkpointed pages of three; the last page of one
    with rt.db.read() as session:
        state = session.get(Connection, made.connection_id).sync_state  # type: ignore[union-attr]
    assert set(state) == {"updated_since"}
    # the next run asks for what changed since the first one started, from its first page
    run(rt, made.connection_id)
    assert sim.stats()["page_tokens"][ACCOUNT][3:] == [None]


def test_a_checkpoint_of_a_run_no_longer_held_is_refused_and_writes_nothing(rt, sim):
    made = make_connection(rt, sim.url, account_id=ACCOUNT, api_key=KEY)
    with rt.db.write() as session:
        run_id, _ = syncs.enqueue_run(session, made.connection_id, trigger="manual", requested_by="t")
    claim = syncs.claim_run(rt, run_id, WORKER)
    assert isinstance(claim, syncs.Claim)
    from tovplus.services.sync.changes import RunCheckpoints, resume_point

    checkpoints = RunCheckpoints(rt, claim, "another-worker", resume_point(rt, claim))
    with pytest.raises(RunSuperseded):
        checkpoints({"page_token": "x"}, [RecordUpsert("print_order", "o-1", {"v": 1})])
    assert records(rt, made.connection_id) == {}


# --- deletions and full resync --------------------------------------------------------------------------


def test_full_resync_marks_exactly_the_missing_records_deleted_and_an_incremental_run_never_does(rt, sim):
    made = make_connection(rt, sim.url, account_id=ACCOUNT, api_key=KEY)
    run(rt, made.connection_id)
    # the printer drops its two newest orders without a trace (no tombstone)
    sim.state.accounts[ACCOUNT].initial_orders = 5
    run(rt, made.connection_id)
    assert deleted(rt, made.connection_id) == set()  # incremental: missing is not deleted
    outcome = run(rt, made.connection_id, SyncTrigger.FULL)
    assert deleted(rt, made.connection_id) == {order(6), order(7)}
    assert live(rt, made.connection_id) == {order(n) for n in range(1, 6)}
    assert outcome.state == "succeeded"
    full_run = runs(rt, made.connection_id)[-1]
    assert full_run.trigger == "full"
    # a full run asked for everything: no updated_since, from the first page
    tokens = sim.stats()["page_tokens"][ACCOUNT]
    assert tokens[-2:] == [None, "pt-3"]
    # a second full run deletes nothing more
    run(rt, made.connection_id, SyncTrigger.FULL)
    assert deleted(rt, made.connection_id) == {order(6), order(7)}


def test_a_deletion_the_printer_reports_marks_the_record_deleted_and_a_newer_version_brings_it_back(rt, sim):
    made = make_connection(rt, sim.url, account_id=ACCOUNT, api_key=KEY)
    run(rt, made.connection_id)
    sim.state.delete_orders(ACCOUNT, [order(2)])
    run(rt, made.connection_id)
    assert deleted(rt, made.connection_id) == {order(2)}
    with rt.db.write() as session:
        later = utcnow() + timedelta(minutes=1)
        older = utcnow() - timedelta(days=30)
        stale = [RecordDelete("print_order", order(3), older)]
        assert record_store.delete_records(session, made.connection_id, stale) == 0
        newer = [RecordUpsert("print_order", order(2), {"v": 2}, later)]
        record_store.upsert_records(session, made.connection_id, newer)
    assert deleted(rt, made.connection_id) == set()  # the older deletion was ignored, the newer upsert won


def test_records_api_leaves_deleted_records_out_unless_asked(client, rt, sim):
    made = make_connection(rt, sim.url, account_id=ACCOUNT, api_key=KEY)
    run(rt, made.connection_id)
    sim.state.delete_orders(ACCOUNT, [order(1)])
    run(rt, made.connection_id)
    url = f"/v1/occasions/{made.occasion_id}/integrations/connections/{made.connection_id}/records"
    auth = {"Authorization": f"Bearer {made.token}"}
    shown = client.get(url, headers=auth).json()["records"]
    assert order(1) not in {r["external_id"] for r in shown}
    assert all(r["deleted_at"] is None for r in shown)
    everything = client.get(url + "?include_deleted=true", headers=auth).json()["records"]
    (gone,) = [r for r in everything if r["external_id"] == order(1)]
    assert gone["deleted_at"] is not None
    assert {"updated_at", "written_at"} <= set(gone)
    assert client.get(url + "?include_deleted=maybe", headers=auth).status_code == 422


def test_post_sync_full_queues_a_full_run_and_refuses_one_while_a_sync_runs(client, rt, sim):
    made = make_connection(rt, sim.url, account_id=ACCOUNT, api_key=KEY)
    url = f"/v1/occasions/{made.occasion_id}/integrations/connections/{made.connection_id}/sync"
    auth = {"Authorization": f"Bearer {made.token}"}
    plain = client.post(url, headers=auth)
    assert plain.status_code == 202, plain.text
    # a waiting run that has not started becomes the full one
    full = client.post(url, headers=auth, json={"full": True})
    assert full.status_code == 202
    assert full.json()["sync_run_id"] == plain.json()["sync_run_id"]
    assert runs(rt, made.connection_id)[-1].trigger == "full"
    claim = syncs.claim_run(rt, full.json()["sync_run_id"], WORKER)
    assert isinstance(claim, syncs.Claim)
    busy = client.post(url, headers=auth, json={"full": True})
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "sync_in_progress"
    assert client.post(url, headers=auth, json={"full": "yes"}).status_code == 422


# --- ordering -----------------------------------------------------------------------------------------


def test_a_callback_without_a_timestamp_is_not_undone_by_an_older_sync_snapshot(rt, sim):
    made = make_connection(rt, sim.url, account_id=ACCOUNT, api_key=KEY)
    with rt.db.write() as session:  # what the callback path stores (same statement, services/records)
        record_store.upsert_records(
            session, made.connection_id, [RecordUpsert("print_order", order(1), {"status": "delivered"})]
        )
    run(rt, made.connection_id)  # the printer's snapshot of order 1 is older than that callback
    stored = records(rt, made.connection_id)
    assert stored[order(1)].data == {"status": "delivered"}
    assert stored[order(2)].data["status"] == "received"


def test_a_newer_version_replaces_an_older_one_whichever_came_first(rt, sim):
    made = make_connection(rt, sim.url, account_id=ACCOUNT, api_key=KEY)
    run(rt, made.connection_id)
    snapshot = records(rt, made.connection_id)[order(1)]
    assert snapshot.version_at == snapshot.source_updated_at
    with rt.db.write() as session:  # a callback newer than the snapshot wins
        record_store.upsert_records(
            session,
            made.connection_id,
            [RecordUpsert("print_order", order(1), {"status": "shipped"}, datetime.now(UTC))],
        )
    run(rt, made.connection_id, SyncTrigger.FULL)  # the full snapshot is older again: it stays shipped
    stored = records(rt, made.connection_id)[order(1)]
    assert stored.data == {"status": "shipped"}
    assert stored.deleted_at is None  # seen by the full run, though not replaced


# --- records_changed ----------------------------------------------------------------------------------


def test_a_run_that_changed_records_emits_records_changed_and_one_that_did_not_emits_nothing(rt, sim):
    made = make_connection(rt, sim.url, account_id=ACCOUNT, api_key=KEY)
    webhooks.create_endpoint(
        rt,
        made.caller,
        made.occasion_id,
        url="https://hooks.example.com/tov",
        event_types=["integration.records_changed"],
    )
    first = run(rt, made.connection_id)
    sim.state.accounts[ACCOUNT].initial_orders = 6
    run(rt, made.connection_id)  # nothing changed since: no event
    run(rt, made.connection_id, SyncTrigger.FULL)  # order 7 is gone now
    with rt.db.read() as session:
        payloads = [d.payload for d in session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))]
    assert [p["type"] for p in payloads] == ["integration.records_changed"] * 2
    data = payloads[0]["data"]
    assert data["connection_id"] == made.connection_id
    assert data["occasion_id"] == made.occasion_id
    assert (data["upserted"], data["deleted"], data["kinds"]) == (7, 0, ["print_order"])
    assert data["integration_key"] == "printing_partner"
    assert data["sync_run_id"] == first.run_id
    assert payloads[1]["data"]["deleted"] == 1


def test_the_simulator_pages_and_refuses_unknown_page_tokens(sim):
    base = f"{sim.url}/accounts/{ACCOUNT}/orders"
    auth = {"Authorization": f"Bearer {KEY}"}
    first = httpx.get(base, headers=auth).json()
    assert len(first["orders"]) == 3
    assert first["next_page_token"] == "pt-3"
    assert httpx.get(base, headers=auth, params={"page_token": "nope"}).status_code == 400
