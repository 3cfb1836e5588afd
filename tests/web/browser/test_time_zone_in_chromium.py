"""Changing an occasion's time zone in real Chromium: "Change" opens the form on the integrations
page, saving shows every time in the new zone, and an unknown zone is refused in words."""

from __future__ import annotations

import pytest

from tests import factories
from tests.support.web import person
from tests.web.browser.kit import chromium, sign_in
from tests.web.browser.server import PageServer
from tovplus.runtime import Runtime
from tovplus.services import occasions

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(120)]


def test_planner_changes_the_time_zone_and_sees_times_in_it(rt: Runtime) -> None:
    planner = person(rt)
    occasion_id = factories.occasion(rt, planner)
    factories.connection(rt, planner, occasion_id)
    errors: list[str] = []
    with PageServer(rt) as server, chromium(errors) as page:
        sign_in(page, server.url, planner)
        page.goto(f"{server.url}/occasions/{occasion_id}/integrations")
        page.get_by_text("Times in UTC · Change").click()
        page.get_by_label("Time zone").fill("Pacific/Auckland")
        page.get_by_role("button", name="Save time zone").click()
        page.wait_for_load_state()
        assert "now shown in Pacific/Auckland" in page.get_by_role("status").first.inner_text()
        assert "Times are shown in Pacific/Auckland" in page.locator("footer").inner_text()
        assert page.get_by_text("Times in Pacific/Auckland · Change").is_visible()
        stamp = page.locator("#recent-activity time, .feed time").first
        assert stamp.inner_text().endswith(("NZDT", "NZST")), (
            stamp.inner_text()
        )  # the zone's own abbreviation

        page.get_by_text("Times in Pacific/Auckland · Change").click()
        page.get_by_label("Time zone").fill("Atlantis/Capital")
        page.get_by_role("button", name="Save time zone").click()
        page.wait_for_load_state()
        assert "The time zone was not changed" in page.get_by_role("alert").first.inner_text()
    with rt.db.read() as session:
        assert occasions.time_zone_of(session, occasion_id) == "Pacific/Auckland"
    assert errors == []
