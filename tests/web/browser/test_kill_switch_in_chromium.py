"""The admin's kill switch on the admin page, in real Chromium: a reason is required, suspending
says how many and since when, resuming puts back exactly those."""

from __future__ import annotations

import pytest

from tests import factories
from tests.support.sync import connection
from tests.support.web import person
from tests.web.browser.kit import chromium, sign_in
from tests.web.browser.server import PageServer
from tovplus.runtime import Runtime

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(120)]


def test_admin_suspends_an_adapter_with_a_reason_and_resumes_exactly_those(rt: Runtime) -> None:
    admin, planner = person(rt, "admin"), person(rt)
    occasion_id = factories.occasion(rt, planner)
    ids = [factories.connection(rt, planner, occasion_id).connection["id"] for _ in range(2)]
    draft = factories.connection(rt, planner, occasion_id, state="draft").connection["id"]
    errors: list[str] = []
    with PageServer(rt) as server, chromium(errors) as page:
        sign_in(page, server.url, admin)
        page.goto(server.url + "/admin/integrations")

        item = page.locator('#kill-switch [data-adapter="printing_partner"]')
        assert "Not suspended · 2 running" in item.locator(".kill-switch__status").inner_text()
        reason = item.get_by_label("Why suspend Printing partner?")
        assert reason.get_attribute("required") is not None
        reason.fill("   ")  # only spaces: the browser lets it through, the service does not
        item.get_by_role("button", name="Suspend 2 connections").click()
        page.wait_for_load_state()
        alert = page.get_by_role("alert").first
        assert "Nothing was suspended" in alert.inner_text()
        assert connection(rt, ids[0]).suspended_at is None

        item = page.locator('#kill-switch [data-adapter="printing_partner"]')
        item.get_by_label("Why suspend Printing partner?").fill("Partner sends garbage")
        item.get_by_role("button", name="Suspend 2 connections").click()
        page.wait_for_load_state()
        assert "2 connections suspended" in page.locator("body").inner_text()
        item = page.locator('#kill-switch [data-adapter="printing_partner"]')
        status = item.locator(".kill-switch__status")
        assert "2 suspended since" in status.inner_text()
        assert "Partner sends garbage" in status.inner_text()
        assert status.locator("time").get_attribute("datetime")
        assert all(connection(rt, i).suspended_at is not None for i in ids)
        assert connection(rt, draft).suspended_at is None
        assert item.get_by_role("button", name="Suspend 2 connections").count() == 0

        item.get_by_role("button", name="Resume 2 connections").click()
        page.wait_for_load_state()
        assert "2 connections resumed" in page.locator("body").inner_text()
        item = page.locator('#kill-switch [data-adapter="printing_partner"]')
        assert "Not suspended · 2 running" in item.locator(".kill-switch__status").inner_text()
        assert all(connection(rt, i).suspended_at is None for i in ids)
    assert errors == []
