"""``GET …/connections/{id}/sync-runs`` per the contract, and "Retry now" on a waiting run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Api, assert_error
from tests.support.sync import Sim, simulator
from tovplus.partner_sim import DEMO_ACCOUNT_ID, DEMO_API_KEY
from tovplus.services import sync as syncs

WORKER = "test-worker"
FIELDS = {
    "id",
    "trigger",
    "state",
    "attempts",
    "queued_at",
    "started_at",
    "finished_at",
    "duration_ms",
    "records_upserted",
    "records_deleted",
    "error",
}


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator() as s:
        yield s


def setup(api: Api, sim: Sim) -> tuple[str, str, str]:
    token = api.user()
    occasion = api.occasion(token)
    r = api.connect(
        token,
        occasion,
        config={"account_id": DEMO_ACCOUNT_ID, "api_base_url": sim.url},
        secrets={"api_key": DEMO_API_KEY},
        state="enabled",
    )
    assert r.status_code == 201, r.text
    return token, occasion, r.json()["connection"]["id"]


def url(occasion: str, cid: str) -> str:
    return f"/v1/occasions/{occasion}/integrations/connections/{cid}/sync-runs"


def sync_now(api: Api, token: str, occasion: str, cid: str) -> str:
    r = api.client.post(
        f"/v1/occasions/{occasion}/integrations/connections/{cid}/sync", headers=api.auth(token)
    )
    assert r.status_code == 202, r.text
    return str(r.json()["sync_run_id"])


def test_sync_runs_newest_first_with_every_contract_field(api, sim):
    token, occasion, cid = setup(api, sim)
    first = sync_now(api, token, occasion, cid)
    assert syncs.execute_run(api.runtime, first, worker_id=WORKER).state == "succeeded"
    sim.control("error500", times=1)
    second = sync_now(api, token, occasion, cid)
    assert syncs.execute_run(api.runtime, second, worker_id=WORKER).state == "retrying"

    r = api.client.get(url(occasion, cid), headers=api.auth(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"sync_runs", "next_cursor"}
    waiting, done = body["sync_runs"]
    assert set(waiting) >= FIELDS
    assert (waiting["id"], done["id"]) == (second, first)
    assert (done["state"], done["trigger"], done["attempts"], done["error"]) == (
        "succeeded",
        "manual",
        1,
        None,
    )
    assert done["records_upserted"] == 4
    assert done["records_deleted"] == 0
    assert done["finished_at"] is not None
    assert isinstance(done["duration_ms"], int)
    assert done["duration_ms"] >= 0
    assert (waiting["state"], waiting["attempts"], waiting["finished_at"]) == ("retry_scheduled", 1, None)
    assert waiting["error"] == "The printer answered HTTP 500."
    assert waiting["next_attempt_at"] is not None
    assert waiting["duration_ms"] is None

    # pages of one, newest first
    r = api.client.get(url(occasion, cid), params={"limit": 1}, headers=api.auth(token))
    page = r.json()
    assert [x["id"] for x in page["sync_runs"]] == [second]
    r = api.client.get(
        url(occasion, cid), params={"limit": 1, "cursor": page["next_cursor"]}, headers=api.auth(token)
    )
    assert [x["id"] for x in r.json()["sync_runs"]] == [first]
    assert r.json()["next_cursor"] is None


def test_retry_now_makes_a_waiting_run_due_and_refuses_other_runs(api, sim):
    token, occasion, cid = setup(api, sim)
    sim.control("error500", times=1)
    run_id = sync_now(api, token, occasion, cid)
    assert syncs.execute_run(api.runtime, run_id, worker_id=WORKER).state == "retrying"
    # the default first retry delay is 30 s: not due yet
    assert syncs.execute_run(api.runtime, run_id, worker_id=WORKER).state == "skipped"
    r = api.client.post(f"{url(occasion, cid)}/{run_id}/retry", headers=api.auth(token))
    assert r.status_code == 202, r.text
    assert r.json() == {"sync_run_id": run_id}
    assert syncs.execute_run(api.runtime, run_id, worker_id=WORKER).state == "succeeded"
    assert_error(
        api.client.post(f"{url(occasion, cid)}/{run_id}/retry", headers=api.auth(token)),
        409,
        "not_retry_scheduled",
    )


def test_sync_runs_refuse_bad_input_and_strangers(api, sim):
    token, occasion, cid = setup(api, sim)
    auth = api.auth(token)
    assert_error(api.client.get(url(occasion, cid), params={"limit": 0}, headers=auth), 422)
    assert_error(api.client.get(url(occasion, cid), params={"cursor": "???"}, headers=auth), 422)
    assert_error(api.client.get(url(occasion, "con_nope"), headers=auth), 404)
    assert_error(api.client.get(url(occasion, "x" * 300), headers=auth), 404)
    stranger = api.user()
    assert_error(api.client.get(url(occasion, cid), headers=api.auth(stranger)), 404)
    assert_error(api.client.post(f"{url(occasion, cid)}/run_nope/retry", headers=api.auth(stranger)), 404)
    assert_error(api.client.post(f"{url(occasion, cid)}/run_nope/retry", headers=auth), 404)
    assert_error(api.client.get(url(occasion, cid)), 401)
    r = api.client.get(url(occasion, cid), headers=auth)
    assert r.json() == {"sync_runs": [], "next_cursor": None}
