"""The actions section in real Chromium: run an action, watch it succeed (the list updates by
itself), then see a failure's reason. A thread stands in for the worker; the server has none."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.actions.support import guest_list_fault
from tests.factories import guest
from tests.support.sync import make_connection, simulator
from tests.support.web import PASSWORD, person
from tests.web.browser.server import CHROMIUM, CHROMIUM_ARGS, LAPTOP, PageServer
from tovplus.db.migrate import upgrade
from tovplus.db.models import ActionRun
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.keyring import generate_key
from tovplus.services import actions
from tovplus.settings import Settings

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(120)]


class StandInWorker:
    """Runs queued action runs every 0.3 s until stopped (what ``tovplus worker`` would do)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.wait(0.3):
            with self.rt.db.read() as session:
                ids = list(session.scalars(select(ActionRun.id).where(ActionRun.state == "queued")))
            for run_id in ids:
                actions.execute_action_run(self.rt, run_id, worker_id="stand-in")


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'pages.db'}",
        queue_url="memory://",
        secret_keys=generate_key(),
        allow_private_urls=True,
    )
    runtime = build_runtime(settings)
    upgrade(runtime.db.engine)
    yield runtime
    runtime.close()


def test_planner_runs_an_action_sees_it_succeed_then_sees_a_failures_reason(rt: Runtime) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    planner = person(rt)
    errors: list[str] = []
    with simulator() as sim, PageServer(rt) as server, sync_playwright() as pw:
        made = make_connection(rt, sim.url, who=(planner.caller, ""))
        guest(rt, planner, made.occasion_id, "Olena")
        guest(rt, planner, made.occasion_id, "Taras")
        worker = StandInWorker(rt)
        worker.thread.start()
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=LAPTOP, timezone_id="UTC").new_page()
            page.set_default_timeout(10_000)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.url + "/sign-in")
            page.get_by_label("Email").fill(planner.email)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_load_state()
            page.goto(
                f"{server.url}/occasions/{made.occasion_id}/integrations/connections/{made.connection_id}"
            )
            section = page.locator("#actions")
            assert "Sends the occasion's guest list" in section.inner_text()

            section.get_by_role("button", name="Send guest list").click()
            page.wait_for_load_state()
            first = page.locator("ol.action-runs li.run").first
            first.locator(".run__state", has_text="Succeeded").wait_for()  # redrawn by the poll
            assert "Sent 2 guests to the printer" in first.inner_text()
            assert f"Asked by {planner.email}" in first.inner_text()

            guest_list_fault(sim, "not_found")
            page.locator("#actions").get_by_role("button", name="Send guest list").click()
            page.wait_for_load_state()
            failed = page.locator("ol.action-runs li.run").first
            failed.locator(".run__state", has_text="Failed").wait_for()
            assert "The printer does not know this account" in failed.locator(".run__error").inner_text()
            page.reload()
            assert page.locator("ol.action-runs li.run").count() == 2
        finally:
            worker.stop.set()
            worker.thread.join(5)
            browser.close()
    assert errors == []
