"""The outage in a real browser: the connection page and the admin page tell the truth from
the first failed attempt (a partner answering 500, a refused connection, a refused API key).

The worker is not running: the test runs each attempt itself (``execute_run``), exactly what
a worker's next tick would do, then looks at the pages.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.sync import Sim, free_port, simulator
from tests.support.web import Person, occasion, person
from tests.web.browser.server import LAPTOP, PageServer
from tests.web.browser.test_pages_in_chromium import Tab, browser  # noqa: F401 (the fixture)
from tovplus.db.migrate import upgrade
from tovplus.db.types import utcnow
from tovplus.partner_sim import DEMO_ACCOUNT_ID, DEMO_API_KEY
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.keyring import generate_key
from tovplus.services import connections
from tovplus.services import sync as syncs
from tovplus.services.connections import ConnectionCreate
from tovplus.settings import Settings

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(180)]


@dataclass
class Outage:
    rt: Runtime
    url: str
    sim: Sim
    planner: Person
    admin: Person
    occasion_id: str


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    tmp = tmp_path_factory.mktemp("outage")
    settings = Settings(
        environment="test",
        data_dir=tmp,
        database_url=f"sqlite:///{tmp / 'outage.db'}",
        queue_url="memory://",
        secret_keys=generate_key(),
        allow_private_urls=True,
        sync_retry_delays=(0.2, 0.2),
        sync_http_timeout_seconds=1.0,
    )
    rt = build_runtime(settings)
    upgrade(rt.db.engine)
    planner, admin = person(rt), person(rt, "admin")
    occ = occasion(rt, planner, "Olena & Taras — wedding")
    try:
        with simulator() as sim, PageServer(rt) as server:
            yield Outage(rt, server.url, sim, planner, admin, occ)
    finally:
        rt.close()


@pytest.fixture
def tab_factory(browser: Any, outage: Outage) -> Iterator[Any]:  # noqa: F811 (browser is the fixture)
    contexts: list[Any] = []
    tabs: list[Tab] = []

    def make() -> Tab:
        context = browser.new_context(viewport=LAPTOP, timezone_id="UTC")
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        tab = Tab(page, outage.url)
        page.on("console", tab.record)
        page.on("response", tab.record_response)
        tabs.append(tab)
        return tab

    yield make
    for context in contexts:
        context.close()
    for tab in tabs:
        assert tab.real_errors() == [], tab.real_errors()


def connect(o: Outage, base_url: str, api_key: str = DEMO_API_KEY) -> str:
    made = connections.create_connection(
        o.rt,
        o.planner.caller,
        o.occasion_id,
        ConnectionCreate(
            "printing_partner",
            config={"account_id": DEMO_ACCOUNT_ID, "api_base_url": base_url},
            secrets={"api_key": api_key},
            state="enabled",
        ),
    )
    return str(made.connection["id"])


def queue(o: Outage, connection_id: str) -> str:
    with o.rt.db.write() as session:
        return syncs.enqueue_run(session, connection_id, trigger="schedule", requested_by="system")[0]


def attempt(o: Outage, run_id: str) -> str:
    """The run's next attempt, as soon as it is due (what the worker does)."""
    for _ in range(50):
        outcome = syncs.execute_run(o.rt, run_id, worker_id="browser-test")
        if outcome.state != "skipped" or outcome.retry_at is None:
            return str(outcome.state)
        time.sleep(max(0.02, (outcome.retry_at - utcnow()).total_seconds()))
    raise AssertionError("never due")


def health_panel(tab: Tab, o: Outage, connection_id: str) -> str:
    tab.goto(f"/occasions/{o.occasion_id}/integrations/connections/{connection_id}")
    return str(tab.page.locator(".health-panel").inner_text())


def admin_stat(tab: Tab, name: str) -> int:
    tab.goto("/admin/integrations")
    label = tab.page.locator(".stat__label").get_by_text(name, exact=True)
    return int(tab.page.locator(".stat", has=label).locator(".stat__value").inner_text())


def test_a_partner_answering_500_is_degraded_at_once_then_failing_then_healthy(
    tab_factory: Any, outage: Outage
) -> None:
    o = outage
    cid = connect(o, o.sim.url)
    planner, admin = tab_factory(), tab_factory()
    planner.sign_in(o.planner)
    admin.sign_in(o.admin)
    assert "The first sync is queued" in health_panel(planner, o, cid)

    o.sim.control("error500")
    run_id = queue(o, cid)
    assert attempt(o, run_id) == "retrying"
    panel = health_panel(planner, o, cid)
    assert "Degraded" in panel
    assert "The printer answered HTTP 500. Retrying — attempt 2 of 3, next at " in panel
    assert "Retrying by itself: attempt 2 at " in panel
    log = planner.page.locator("#sync-log")
    assert "Waiting to retry" in log.inner_text()
    assert planner.page.get_by_role("button", name="Retry now").is_visible()
    assert admin_stat(admin, "Retrying") == 1
    assert admin_stat(admin, "Degraded") == 1

    # "Retry now" on the page makes the waiting attempt due at once
    planner.page.get_by_role("button", name="Retry now").click()
    planner.page.wait_for_load_state()
    assert "Retrying now." in planner.page.inner_text("body")
    assert syncs.execute_run(o.rt, run_id, worker_id="browser-test").state == "retrying"
    assert "attempt 3 of 3" in health_panel(planner, o, cid)
    assert attempt(o, run_id) == "failed"
    panel = health_panel(planner, o, cid)
    assert "Failing" in panel
    assert "Gave up after 3 attempts" in panel
    assert admin_stat(admin, "Retrying") == 0
    assert admin_stat(admin, "Failing") == 1

    o.sim.control("ok")
    planner.goto(f"/occasions/{o.occasion_id}/integrations/connections/{cid}")
    planner.page.get_by_role("button", name="Sync now").click()
    planner.page.wait_for_load_state()
    (latest,) = connections.connection_sync_runs(
        o.rt, o.planner.caller, o.occasion_id, cid, limit=1, cursor=None
    ).items
    assert latest.id != run_id
    if latest.state == "queued":  # no worker here: run it as the worker would
        assert attempt(o, latest.id) == "succeeded"
    panel = health_panel(planner, o, cid)
    assert "Healthy" in panel
    assert "Working normally." in panel
    assert "Succeeded" in planner.page.locator("#sync-log").inner_text()


def test_a_refused_connection_and_a_refused_key_read_as_people_read_them(
    tab_factory: Any, outage: Outage
) -> None:
    o = outage
    refused = connect(o, f"http://127.0.0.1:{free_port()}")
    rejected = connect(o, o.sim.url, api_key="not-the-printers-key-0000")
    tab = tab_factory()
    tab.sign_in(o.planner)

    run_id = queue(o, refused)
    assert attempt(o, run_id) == "retrying"
    panel = health_panel(tab, o, refused)
    assert "Degraded" in panel
    assert "Could not reach the printer at 127.0.0.1. Retrying — attempt 2 of 3" in panel
    assert "ConnectError" not in tab.page.inner_text("body")
    attempt(o, run_id)
    assert attempt(o, run_id) == "failed"
    panel = health_panel(tab, o, refused)
    assert "Failing" in panel
    assert "Could not reach the printer at 127.0.0.1." in panel

    assert attempt(o, queue(o, rejected)) == "failed"  # at once: no retry for a refused key
    panel = health_panel(tab, o, rejected)
    assert "Failing" in panel
    assert "rejected the API key" in panel
    assert "Waiting to retry" not in tab.page.locator("#sync-log").inner_text()
