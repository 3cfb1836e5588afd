"""'Test connection' in real Chromium: a planner presses it on a draft whose key the printer refuses,
reads the problem next to the button, saves the right key, presses it again and reads "Works"."""

from __future__ import annotations

import pytest

from tests.support.sync import make_connection, simulator
from tests.support.web import person
from tests.web.browser.kit import chromium, sign_in
from tests.web.browser.server import PageServer
from tovplus.partner_sim import DEMO_ACCOUNT_ID, DEMO_API_KEY
from tovplus.runtime import Runtime

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(120)]
WRONG_KEY = "pk_live_WRONGWRONGWRONG42"


def test_planner_tests_a_draft_fixes_the_key_and_tests_again(rt: Runtime) -> None:
    planner = person(rt)
    errors: list[str] = []
    with simulator() as sim, PageServer(rt) as server, chromium(errors) as page:
        made = make_connection(rt, sim.url, api_key=WRONG_KEY, state="draft", who=(planner.caller, ""))
        sign_in(page, server.url, planner)
        page.goto(f"{server.url}/occasions/{made.occasion_id}/integrations/connections/{made.connection_id}")
        settings = page.locator("section[aria-labelledby=settings-title]")
        settings.get_by_role("button", name="Test connection").click()
        page.wait_for_load_state()
        result = page.locator("#check-result")
        result.wait_for()
        assert result.inner_text() == (
            "Did not work: The printer rejected the API key: enter a current API key for this connection."
        )
        assert "text-bad" in (result.get_attribute("class") or "")
        assert WRONG_KEY not in page.content()

        page.get_by_label("API key").fill(DEMO_API_KEY)
        page.get_by_role("button", name="Save settings").click()
        page.wait_for_load_state()
        assert page.locator("#check-result").count() == 0
        page.locator("section[aria-labelledby=settings-title]").get_by_role(
            "button", name="Test connection"
        ).click()
        page.wait_for_load_state()
        result = page.locator("#check-result")
        result.wait_for()
        assert result.inner_text() == f"Works — signed in as printer account {DEMO_ACCOUNT_ID}."
        assert "text-good" in (result.get_attribute("class") or "")
        assert DEMO_API_KEY not in page.content()
        page.reload()
        assert page.locator("#check-result").count() == 0  # shown once, like every flash
    assert errors == []
