"""'Test connection' in real Chromium: a planner presses it on a draft whose key the printer refuses,
reads the problem next to the button, saves the right key, presses it again and reads "Works"."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sync import make_connection, simulator
from tests.support.web import PASSWORD, person
from tests.web.browser.server import CHROMIUM, CHROMIUM_ARGS, LAPTOP, PageServer
from tovplus.db.migrate import upgrade
from tovplus.partner_sim import DEMO_ACCOUNT_ID, DEMO_API_KEY
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.keyring import generate_key
from tovplus.settings import Settings

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(120)]
WRONG_KEY = "pk_live_WRONGWRONGWRONG42"


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


def test_planner_tests_a_draft_fixes_the_key_and_tests_again(rt: Runtime) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    planner = person(rt)
    errors: list[str] = []
    with simulator() as sim, PageServer(rt) as server, sync_playwright() as pw:
        made = make_connection(rt, sim.url, api_key=WRONG_KEY, state="draft", who=(planner.caller, ""))
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
        finally:
            browser.close()
    assert errors == []
