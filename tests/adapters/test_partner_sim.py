"""The printing partner simulator: the contract's partner API, moving orders, fault switches."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.sync import Proc, free_port, simulator, wait_http
from tovplus.partner_sim import DEMO_ACCOUNT_ID, DEMO_API_KEY, ORDER_STATUSES, generated_key

pytestmark = pytest.mark.no_db
AUTH = {"Authorization": f"Bearer {DEMO_API_KEY}"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Iterator[tuple[httpx.Client, object]]:
    with simulator(step_seconds=10, clock=clock) as s, httpx.Client(base_url=s.url, timeout=5) as client:
        yield client, s


def test_the_demo_account_answers_with_the_contract_shapes(sim):
    client, _ = sim
    r = client.get(f"/accounts/{DEMO_ACCOUNT_ID}", headers=AUTH)
    assert r.status_code == 200
    assert r.json() == {"account_id": DEMO_ACCOUNT_ID, "status": "active"}
    orders = client.get(f"/accounts/{DEMO_ACCOUNT_ID}/orders", headers=AUTH).json()["orders"]
    assert len(orders) == 4
    for order in orders:
        assert set(order) == {"order_id", "status", "updated_at", "tracking_number"}
        assert order["status"] in ORDER_STATUSES
        assert order["updated_at"].endswith("Z")


def test_a_wrong_or_missing_key_is_401_and_an_unknown_account_404(sim):
    client, _ = sim
    assert client.get(f"/accounts/{DEMO_ACCOUNT_ID}").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.get(f"/accounts/{DEMO_ACCOUNT_ID}/orders", headers=wrong).status_code == 401
    assert client.get("/accounts/nobody", headers=AUTH).status_code == 404


def test_orders_move_through_their_statuses_over_time_and_new_ones_appear(sim, clock):
    client, _ = sim
    first = {
        o["order_id"]: o
        for o in client.get(f"/accounts/{DEMO_ACCOUNT_ID}/orders", headers=AUTH).json()["orders"]
    }
    assert {o["status"] for o in first.values()} == {"received"}
    assert all(o["tracking_number"] is None for o in first.values())
    clock.now += 45
    later = {
        o["order_id"]: o
        for o in client.get(f"/accounts/{DEMO_ACCOUNT_ID}/orders", headers=AUTH).json()["orders"]
    }
    assert later["demo-account-ord-0001"]["status"] == "shipped"
    assert later["demo-account-ord-0001"]["tracking_number"].startswith("TRK")
    assert later["demo-account-ord-0001"]["updated_at"] > first["demo-account-ord-0001"]["updated_at"]
    clock.now += 1000
    final = client.get(f"/accounts/{DEMO_ACCOUNT_ID}/orders", headers=AUTH).json()["orders"]
    assert len(final) > 4  # a new order every three steps
    assert final[0]["status"] == "delivered"


def test_updated_since_returns_only_orders_that_changed(sim, clock):
    client, _ = sim
    clock.now += 25
    everything = client.get(f"/accounts/{DEMO_ACCOUNT_ID}/orders", headers=AUTH).json()["orders"]
    newest = max(o["updated_at"] for o in everything)
    recent = client.get(
        f"/accounts/{DEMO_ACCOUNT_ID}/orders", params={"updated_since": newest}, headers=AUTH
    ).json()["orders"]
    assert 0 < len(recent) < len(everything)
    assert all(o["updated_at"] >= newest for o in recent)
    bad = client.get(
        f"/accounts/{DEMO_ACCOUNT_ID}/orders", params={"updated_since": "yesterday"}, headers=AUTH
    )
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("mode", "status"), [("unauthorized", 401), ("forbidden", 403), ("error500", 500), ("not_found", 404)]
)
def test_fault_switches_answer_with_their_status_for_a_number_of_requests(sim, mode, status):
    client, _ = sim
    assert client.post("/_control", json={"mode": mode, "times": 2}).status_code == 200
    answers = [client.get(f"/accounts/{DEMO_ACCOUNT_ID}", headers=AUTH).status_code for _ in range(3)]
    assert answers == [status, status, 200]


def test_suspended_and_mismatch_modes_change_the_account_answer(sim):
    client, _ = sim
    client.post("/_control", json={"mode": "suspended"})
    assert client.get(f"/accounts/{DEMO_ACCOUNT_ID}", headers=AUTH).json()["status"] == "suspended"
    client.post("/_control", json={"mode": "mismatch"})
    assert client.get(f"/accounts/{DEMO_ACCOUNT_ID}", headers=AUTH).json()["account_id"] == "another-account"
    client.post("/_control", json={"mode": "ok"})
    assert client.get(f"/accounts/{DEMO_ACCOUNT_ID}", headers=AUTH).json()["status"] == "active"


def test_slow_mode_delays_answers_and_one_account_can_fail_alone(sim):
    client, _ = sim
    client.post(
        "/_control/accounts", json={"accounts": [{"account_id": "other", "api_key": "other-key-0001"}]}
    )
    client.post("/_control", json={"mode": "slow", "delay_seconds": 0.4, "account_id": "other"})
    started = time.monotonic()
    assert (
        client.get("/accounts/other", headers={"Authorization": "Bearer other-key-0001"}).status_code == 200
    )
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    assert client.get(f"/accounts/{DEMO_ACCOUNT_ID}", headers=AUTH).status_code == 200
    assert time.monotonic() - started < 0.4


def test_accounts_can_be_made_in_bulk_with_known_keys(sim):
    client, _ = sim
    r = client.post("/_control/accounts", json={"prefix": "load", "count": 50, "orders": 1})
    assert r.json() == {"created": 50}
    key = generated_key("load-000049")
    orders = client.get("/accounts/load-000049/orders", headers={"Authorization": f"Bearer {key}"}).json()
    assert len(orders["orders"]) == 1


def test_control_input_is_checked(sim):
    client, _ = sim
    assert client.post("/_control", json={"mode": "explode"}).status_code == 422
    assert client.post("/_control", json={"mode": "ok", "times": -1}).status_code == 422
    assert client.post("/_control", content=b"{not json").status_code == 400
    assert client.post("/_control/accounts", json={"accounts": [{}]}).status_code == 422
    assert client.post("/_control/accounts", json={}).status_code == 422
    assert (
        client.post("/_control/accounts", json={"prefix": "x", "count": 1, "orders": "many"}).status_code
        == 422
    )
    bad = {"accounts": [{"account_id": "y", "orders": -1}]}
    assert client.post("/_control/accounts", json=bad).status_code == 422


def test_stats_count_requests_and_concurrency_per_account(sim):
    client, s = sim
    s.control("slow", delay_seconds=0.3)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda _: httpx.get(f"{s.url}/accounts/{DEMO_ACCOUNT_ID}", headers=AUTH), range(3)))
    stats = client.get("/_control/stats").json()
    assert stats["account_reads"] == {DEMO_ACCOUNT_ID: 3}
    assert stats["max_in_flight_per_account"] >= 2
    client.post("/_control/reset")
    assert client.get("/_control/stats").json()["requests"] == 0


def test_the_partner_sim_command_serves_the_demo_account(tmp_path):
    port = free_port()
    proc = Proc(
        ["partner-sim", "--port", str(port), "--step-seconds", "5"],
        {"PATH": "/usr/bin:/bin"},
        tmp_path / "sim.log",
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc, timeout=30)
        r = httpx.get(f"http://127.0.0.1:{port}/accounts/{DEMO_ACCOUNT_ID}", headers=AUTH)
        assert r.json()["status"] == "active"
    finally:
        assert proc.stop() in (0, -15)
    assert "partner simulator on" in proc.output()
