"""The admin's kill switch on the admin page, in real Chromium: a reason is required, suspending
says how many and since when, resuming puts back exactly those."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import factories
from tests.support.sync import connection
from tests.support.web import PASSWORD, person
from tests.web.browser.server import CHROMIUM, CHROMIUM_ARGS, LAPTOP, PageServer
from tovplus.db.migrate import upgrade
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.keyring import generate_key
from tovplus.settings import Settings

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(120)]


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'pages.db'}",
        queue_url="memory://",
        secret_keys=generate_key(),
    )
    runtime = build_runtime(settings)
    upgrade(runtime.db.engine)
    yield runtime
    runtime.close()


def test_admin_suspends_an_adapter_with_a_reason_and_resumes_exactly_those(rt: Runtime) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    admin, planner = person(rt, "admin"), person(rt)
    occasion_id = factories.occasion(rt, planner)
    ids = [factories.connection(rt, planner, occasion_id).connection["id"] for _ in range(2)]
    draft = factories.connection(rt, planner, occasion_id, state="draft").connection["id"]
    errors: list[str] = []
    with PageServer(rt) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=LAPTOP, timezone_id="UTC").new_page()
            page.set_default_timeout(10_000)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.url + "/sign-in")
            page.get_by_label("Email").fill(admin.email)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_load_state()
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
        finally:
            browser.close()
    assert errors == []
