"""The actions section in real Chromium: run an action, watch it succeed (the list updates by
itself), then see a failure's reason. A thread stands in for the worker; the server has none."""

from __future__ import annotations

import pytest

from tests.actions.support import guest_list_fault
from tests.factories import guest
from tests.support.sync import make_connection, simulator
from tests.support.web import person
from tests.web.browser.kit import StandInWorker, chromium, sign_in
from tests.web.browser.server import PageServer
from tovplus.runtime import Runtime

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(120)]


def test_planner_runs_an_action_sees_it_succeed_then_sees_a_failures_reason(rt: Runtime) -> None:
    planner = person(rt)
    errors: list[str] = []
    with simulator() as sim, PageServer(rt) as server, StandInWorker(rt), chromium(errors) as page:
        made = make_connection(rt, sim.url, who=(planner.caller, ""))
        guest(rt, planner, made.occasion_id, "Olena")
        guest(rt, planner, made.occasion_id, "Taras")
        sign_in(page, server.url, planner)
        page.goto(f"{server.url}/occasions/{made.occasion_id}/integrations/connections/{made.connection_id}")
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
    assert errors == []
