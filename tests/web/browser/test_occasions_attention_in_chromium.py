""" "Needs attention" on the occasions list, in real Chromium: the planner sees the notices of the
occasions they plan (not of others'), each linking to its connection, and dismisses one there."""

from __future__ import annotations

import pytest

from tests import factories
from tests.support.web import person
from tests.web.browser.kit import chromium, sign_in
from tests.web.browser.server import PageServer
from tovplus.runtime import Runtime
from tovplus.services import notifications

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(120)]


def _failing(rt: Runtime, occasion_id: str, connection_id: str, why: str) -> None:
    change = notifications.HealthChange(
        occasion_id, connection_id, "printing_partner", "healthy", "failing", (why,)
    )
    with rt.db.write() as session:
        notifications.health_changed(session, change, name="Printing partner")


def test_the_occasions_list_shows_the_planners_notices_with_dismiss(rt: Runtime) -> None:
    planner, other = person(rt), person(rt)
    wedding = factories.occasion(rt, planner, "Wedding")
    gala = factories.occasion(rt, planner, "Gala")
    theirs = factories.occasion(rt, other, "Not yours")
    made = {
        o: factories.connection(rt, p, o).connection["id"]
        for o, p in ((wedding, planner), (gala, planner), (theirs, other))
    }
    _failing(rt, wedding, made[wedding], "The printer refused our API key (HTTP 401).")
    _failing(rt, gala, made[gala], "The printer does not know this account.")
    _failing(rt, theirs, made[theirs], "Someone else's trouble.")
    errors: list[str] = []
    with PageServer(rt) as server, chromium(errors) as page:
        sign_in(page, server.url, planner)
        assert page.get_by_role("heading", name="Your occasions").is_visible()

        attention = page.locator("#needs-attention")
        items = attention.locator(".attention__item")
        assert items.count() == 2
        text = attention.inner_text()
        assert "Wedding:" in text
        assert "refused our API key" in text
        assert "Gala:" in text
        assert "does not know this account" in text
        assert "Someone else" not in text
        # it sits at the top: above the list of occasions
        top = attention.bounding_box()
        first_occasion = page.locator(".occasion-list").bounding_box()
        assert top is not None
        assert first_occasion is not None
        assert top["y"] < first_occasion["y"]
        link = items.filter(has_text="Wedding:").get_by_role("link")
        assert link.get_attribute("href") == f"/occasions/{wedding}/integrations/connections/{made[wedding]}"

        items.filter(has_text="Gala:").get_by_role("button", name="Dismiss").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", name="Your occasions").is_visible()  # stayed on the list
        attention = page.locator("#needs-attention")
        assert attention.locator(".attention__item").count() == 1
        assert "Gala:" not in attention.inner_text()

        page.locator("#needs-attention").get_by_role("button", name="Dismiss").click()
        page.wait_for_load_state()
        assert page.locator("#needs-attention").count() == 0
        page.goto(f"{server.url}/occasions/{wedding}/integrations")  # cleared there too
        assert page.locator("#needs-attention").count() == 0
    assert errors == []
    assert len(notifications.open_notices(rt, other.caller)) == 1  # the other planner's stays
