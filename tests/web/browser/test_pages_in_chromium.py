"""The pages in a real browser: Debian's Chromium driven by Playwright against a live server.

The server (API and pages, no worker) runs with uvicorn on a free loopback port over
its own migrated SQLite database, so these tests run once, in the SQLite pass
(``no_db``: they never touch the backend under test). Every page must leave the
browser console free of errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.web import PASSWORD, Person, occasion, person, set_health
from tests.web.browser.server import CHROMIUM, CHROMIUM_ARGS, LAPTOP, PHONE, PageServer
from tovplus.db.migrate import upgrade
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.keyring import generate_key
from tovplus.services import connections
from tovplus.services.connections import ConnectionCreate
from tovplus.settings import Settings

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(120)]

API_KEY = "pk_live_browser_secret_9876"


@dataclass
class Site:
    rt: Runtime
    url: str
    planner: Person
    other_planner: Person
    admin: Person
    occasion_id: str
    failing_id: str
    other_occasion_id: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("pages")
    settings = Settings(
        environment="test",
        data_dir=tmp,
        database_url=f"sqlite:///{tmp / 'pages.db'}",
        queue_url="memory://",
        secret_keys=generate_key(),
        allow_private_urls=True,
    )
    rt = build_runtime(settings)
    upgrade(rt.db.engine)
    planner, other, admin = person(rt), person(rt), person(rt, "admin")
    occ = occasion(rt, planner, "Olena & Taras — wedding", events=2)
    other_occ = occasion(rt, other, "Kyiv Product Summit")
    failing = connections.create_connection(
        rt,
        other.caller,
        other_occ,
        ConnectionCreate(
            "printing_partner",
            config={"account_id": "summit-badges", "api_base_url": "https://printer.example.com/api"},
            secrets={"api_key": "sk_summit_badges_0000_9f3a"},
            state="enabled",
        ),
    ).connection["id"]
    connections.create_connection(
        rt,
        other.caller,
        other_occ,
        ConnectionCreate(
            "venue_ops", config={"venue_id": "hall-2"}, secrets={"api_token": "vt_hall_2_token"}
        ),
    )
    set_health(rt, failing, "failing", ["The printer refused our API key (HTTP 401)."])
    try:
        with PageServer(rt) as server:
            yield Site(rt, server.url, planner, other, admin, occ, failing, other_occ)
    finally:
        rt.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Tab:
    """A page in a fresh browser context that records console errors and failed requests."""

    page: Any
    base: str
    errors: list[tuple[str, str]] = field(default_factory=list)
    #: Pages (documents, not images, scripts or styles) that answered 4xx, e.g. a 404 page.
    error_documents: set[str] = field(default_factory=set)

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def sign_in(self, who: Person) -> None:
        self.goto("/sign-in")
        self.page.get_by_label("Email").fill(who.email)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state()

    def real_errors(self) -> list[str]:
        """Console errors, except Chromium's own note that a page (the document itself) answered
        4xx: a form shown again with its errors (409/422) or the 404 page. A failed image, script
        or stylesheet, and any script error, still counts."""
        return [
            text
            for text, url in self.errors
            if not (text.startswith("Failed to load resource:") and url in self.error_documents)
        ]

    def record(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append((message.text, message.location.get("url", "")))

    def record_response(self, response: Any) -> None:
        if response.status >= 400 and response.request.resource_type == "document":
            self.error_documents.add(response.url)


@pytest.fixture
def tab_factory(browser: Any, site: Site) -> Iterator[Any]:
    contexts: list[Any] = []
    tabs: list[Tab] = []

    def make(viewport: dict[str, int] = LAPTOP) -> Tab:
        context = browser.new_context(viewport=viewport, timezone_id="UTC")
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        tab = Tab(page, site.url)
        page.on("console", tab.record)
        page.on("response", tab.record_response)
        page.on("pageerror", lambda exc: tab.errors.append((f"uncaught: {exc}", "")))
        tabs.append(tab)
        return tab

    yield make
    for context in contexts:
        context.close()
    for tab in tabs:
        assert tab.real_errors() == [], tab.real_errors()


def _badge(page: Any) -> str:
    return str(page.locator(".page-head .badge").inner_text()).replace("State:", "").strip()


def test_planner_connects_fixes_enables_rotates_syncs_and_revokes(tab_factory: Any, site: Site) -> None:
    tab = tab_factory()
    page = tab.page
    tab.sign_in(site.planner)
    assert page.get_by_role("heading", name="Your occasions").is_visible()
    page.get_by_role("link", name="Olena & Taras — wedding").click()
    assert page.get_by_role("heading", name="Integrations", exact=True).is_visible()
    assert page.get_by_text("Send guest and event details to a stationery printer").is_visible()

    # A missing field: nothing typed is lost. The connection is kept as a draft (the key stored
    # encrypted, never put back into the page) and the error appears next to its field.
    page.get_by_role("link", name="Connect Printing partner").click()
    page.get_by_label("API base URL").fill("https://printer.example.com/api")
    page.get_by_label("API key").fill(API_KEY)
    page.get_by_role("button", name="Connect and enable").click()
    page.wait_for_load_state()
    assert "with everything you typed" in page.locator(".alert--success").inner_text()
    assert _badge(page) == "Draft"
    account = page.get_by_label("Account ID")
    assert account.get_attribute("aria-invalid") == "true"
    assert "Account ID is required." in page.locator("#config-account_id-error").inner_text()
    assert page.get_by_label("API base URL").input_value() == "https://printer.example.com/api"
    assert "••••••••9876" in page.locator("section:has(#settings-title)").inner_text()
    assert page.get_by_label("API key").input_value() == ""  # secrets are never put back
    assert API_KEY not in page.content()
    assert len(connections_of(site, site.occasion_id)) == 1

    first_key = page.locator("#issued-key").input_value()
    assert first_key.startswith("tov_")
    assert page.get_by_text("You will not see this key again.").is_visible()
    page.get_by_role("button", name="Copy key", exact=True).click()
    page.locator(".onetime").get_by_text("Copied to the clipboard.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == first_key

    # Fixed on the draft's page (the stored key is kept), then enabled.
    account.fill("olena-taras")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_load_state()
    assert "Settings saved." in page.locator(".alert--success").inner_text()

    page.get_by_role("button", name="Enable").click()
    page.wait_for_load_state()
    assert "Enabled. The integration can now use its key." in page.locator(".alert--success").inner_text()
    assert _badge(page) == "Enabled"
    assert page.locator("#issued-key").count() == 0  # the key was shown once
    assert first_key not in page.content()
    scope = page.locator("section:has(#access-title)")
    assert "The whole occasion" in scope.inner_text()
    assert "guests.read" in scope.inner_text()

    # Rotate: a confirmation, then a new key, once.
    page.get_by_text("Rotate key…").click()
    page.get_by_role("button", name="Rotate the key").click()
    page.wait_for_load_state()
    second_key = page.locator("#issued-key").input_value()
    assert second_key.startswith("tov_")
    assert second_key != first_key

    # Sync now: with no worker running, the queued run shows.
    page.get_by_role("button", name="Sync now").click()
    page.wait_for_load_state()
    assert "Sync queued" in page.locator(".alert--success").inner_text()
    assert "Queued" in page.locator('ol[aria-label="Recent sync runs"]').inner_text()

    # Revoke, after typing the connection's name: focus starts on the safe field, and the
    # destructive button stays disabled until the name matches.
    page.get_by_text("Revoke…").click()
    confirm = page.get_by_label("Type the name Printing partner to confirm")
    assert confirm.evaluate("el => el === document.activeElement")
    revoke = page.get_by_role("button", name="Yes, revoke this connection")
    assert revoke.is_disabled()
    confirm.fill("Printing partner")
    assert revoke.is_enabled()
    revoke.click()
    page.wait_for_load_state()
    assert "Revoked. Its key no longer works" in page.locator(".alert--success").inner_text()
    assert _badge(page) == "Revoked"
    assert page.get_by_role("button", name="Sync now").count() == 0
    activity = page.locator("section:has(#activity-title) .feed").inner_text()
    for label in ("Created", "Enabled", "Key rotated", "Revoked"):
        assert label in activity
    assert API_KEY not in page.content()
    assert second_key not in page.content()


def connections_of(site: Site, occasion_id: str) -> list[str]:
    from tests.support.web import connection_ids

    return connection_ids(site.rt, occasion_id)


def test_another_planner_gets_404(tab_factory: Any, site: Site) -> None:
    tab = tab_factory()
    tab.sign_in(site.planner)
    tab.page.get_by_role("link", name="Olena & Taras — wedding").click()
    mine = tab.page.url
    intruder = tab_factory()
    intruder.sign_in(site.other_planner)
    response = intruder.page.goto(mine)
    assert response.status == 404
    assert intruder.page.get_by_role("heading", name="Not found").is_visible()
    assert "Olena" not in intruder.page.content()


def test_an_unknown_address_in_a_browser_is_a_page_not_json(tab_factory: Any, site: Site) -> None:
    tab = tab_factory()
    response = tab.page.goto(f"{site.url}/nope")
    assert response.status == 404
    assert tab.page.get_by_role("heading", name="Page not found").is_visible()
    assert '"error"' not in tab.page.content()


def test_admin_filters_to_failing_connections(tab_factory: Any, site: Site) -> None:
    tab = tab_factory()
    page = tab.page
    tab.sign_in(site.admin)
    assert page.url.endswith("/admin/integrations")
    failing_stat = page.locator(".stat--failing .stat__value")
    assert int(failing_stat.inner_text()) >= 1
    page.get_by_label("Health").select_option("failing")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_load_state()
    assert "health=failing" in page.url
    rows = page.locator("table tbody tr")
    assert rows.count() >= 1
    for i in range(rows.count()):
        assert "Failing" in rows.nth(i).inner_text()
    row = page.locator("tr", has_text=site.failing_id)
    assert "The printer refused our API key (HTTP 401)." in row.inner_text()
    row.get_by_role("link", name="Printing partner").click()
    page.wait_for_load_state()
    assert "Not working. See the reasons below." in page.locator(".health-panel").inner_text()
    assert "The printer refused our API key (HTTP 401)." in page.locator(".health-panel").inner_text()


@pytest.mark.parametrize("who", ["planner", "admin"])
def test_pages_fit_a_phone_and_start_with_a_skip_link(tab_factory: Any, site: Site, who: str) -> None:
    tab = tab_factory(PHONE)
    tab.sign_in(site.planner if who == "planner" else site.admin)
    if who == "planner":
        tab.goto(f"/occasions/{site.occasion_id}/integrations")
    widths = tab.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths
    tab.page.keyboard.press("Tab")
    assert tab.page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    for label in tab.page.locator("select, input:not([type=hidden])").all():
        name = label.evaluate("e => e.labels && e.labels.length ? e.labels[0].textContent.trim() : ''")
        assert name, label.evaluate("e => e.outerHTML")
    assert re.search(r"\S", tab.page.locator("h1").inner_text())
