"""Issue 18 in a real browser: finding connections, the partner hand-off, plain words, local time.

Admin search, worst-first order, the setup panel's copy buttons, a create form error that keeps
what was typed (no secret in the HTML), times in the occasion's zone, revoke needing the label,
offline ``/docs`` and ``/redoc``, and the page refreshing itself while a sync runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from tests import factories
from tests.support.web import PASSWORD, Person, person, set_health
from tests.web.browser.server import CHROMIUM, CHROMIUM_ARGS, LAPTOP, PageServer
from tovplus.db.migrate import upgrade
from tovplus.db.models import SyncRun
from tovplus.db.types import utcnow
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.keyring import generate_key
from tovplus.services import connections, occasions
from tovplus.services.connections import ConnectionCreate
from tovplus.settings import Settings

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(180)]

API_KEY = "pk_live_handoff_secret_4321"
PRINTING = {"account_id": "kyiv-print", "api_base_url": "https://printer.example.com/api"}


@dataclass
class Site:
    rt: Runtime
    url: str
    planner: Person
    admin: Person
    occasion_id: str
    labelled_id: str
    failing_id: str
    quiet_id: str


def _connect(rt: Runtime, who: Person, occ: str, label: str | None, account: str = "kyiv-print") -> str:
    data = ConnectionCreate(
        "printing_partner",
        config={**PRINTING, "account_id": account},
        secrets={"api_key": API_KEY},
        state="enabled",
        label=label,
    )
    return str(connections.create_connection(rt, who.caller, occ, data).connection["id"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("handoff")
    settings = Settings(
        environment="test",
        data_dir=tmp,
        database_url=f"sqlite:///{tmp / 'handoff.db'}",
        queue_url="memory://",
        secret_keys=generate_key(),
        allow_private_urls=True,
        public_base_url="https://tov.example.com",
    )
    rt = build_runtime(settings)
    upgrade(rt.db.engine)
    planner = factories.user(rt, "planner", email="olena.handoff@example.com", password=PASSWORD, token=False)
    admin = person(rt, "admin")
    with rt.db.write() as session:
        occ = occasions.create_occasion(
            session, planner.caller, "Kyiv wedding", factories.WEDDING_DAY, "Europe/Kyiv"
        )
        occ_id = occ.id
    quiet = _connect(rt, planner, occ_id, None, "quiet-one")
    labelled = _connect(rt, planner, occ_id, "Menus and place cards")
    failing = _connect(rt, planner, occ_id, "Invitations", "failing-one")
    set_health(rt, failing, "failing", ["The printer refused our API key (HTTP 401)."])
    try:
        with PageServer(rt) as server:
            yield Site(rt, server.url, planner, admin, occ_id, labelled, failing, quiet)
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


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    """A fresh context in UTC (so times shown in Kyiv come from the occasion, not the browser);
    console errors fail the test, and so does any request to another host."""
    context = browser.new_context(viewport=LAPTOP, timezone_id="UTC")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    foreign: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    tab.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and "Failed to load resource" not in m.text else None
        ),
    )
    tab.on("request", lambda r: foreign.append(r.url) if not _local(r.url, site.url) else None)
    yield tab
    context.close()
    assert errors == []
    assert foreign == []


def _local(url: str, base: str) -> bool:
    """True for this server's own addresses. ReDoc's bundle also asks for its "by Redocly" footer
    logo from its CDN: that one picture fails offline and the docs render without it."""
    return url.startswith((base, "data:", f"blob:{base}")) or url.endswith("/redoc/logo-mini.svg")


def _sign_in(page: Any, site: Site, who: Person) -> None:
    page.goto(site.url + "/sign-in")
    page.get_by_label("Email").fill(who.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def _connection_page(site: Site, connection_id: str) -> str:
    return f"{site.url}/occasions/{site.occasion_id}/integrations/connections/{connection_id}"


def test_admin_finds_a_connection_by_searching(page: Any, site: Site) -> None:
    _sign_in(page, site, site.admin)
    page.get_by_label("Search").fill("olena.handoff@")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_load_state()
    rows = page.locator("table tbody tr")
    assert rows.count() == 3
    page.get_by_label("Search").fill("menus and")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_load_state()
    assert rows.count() == 1
    assert site.labelled_id in rows.first.inner_text()
    page.get_by_label("Search").fill("")
    page.get_by_label("Occasion").fill("kyiv wed")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_load_state()
    assert rows.count() == 3
    # sortable columns: worst health first
    page.get_by_role("link", name="Status").click()
    page.wait_for_load_state()
    assert "sort=health" in page.url
    assert site.failing_id in rows.first.inner_text()
    assert str(page.locator("th[aria-sort]").text_content()).strip().startswith("Status")
    rows.first.get_by_role("link", name="Invitations").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Invitations").is_visible()


def test_planner_cards_are_worst_first_with_labels(page: Any, site: Site) -> None:
    _sign_in(page, site, site.planner)
    page.goto(f"{site.url}/occasions/{site.occasion_id}/integrations")
    names = page.locator(".conn__name a").all_inner_texts()
    assert names[0] == "Invitations"  # failing first
    assert set(names) == {"Invitations", "Menus and place cards", "Printing partner"}
    may_read = page.locator(".adapter").first.inner_text()
    assert "See the guest list" in may_read
    assert "guests.read" in may_read  # the code, in small type


def test_partner_setup_panel_copies_each_value(page: Any, site: Site) -> None:
    _sign_in(page, site, site.planner)
    page.goto(_connection_page(site, site.quiet_id))
    panel = page.locator("#partner-setup")
    expected = {
        "Callback URL": f"https://tov.example.com/v1/integrations/callbacks/printing_partner/{site.quiet_id}",
        "Header for the key": "x-tov-integration-secret",
        "TOV Plus API address": "https://tov.example.com/v1",
    }
    for label, value in expected.items():
        assert panel.get_by_label(label).input_value() == value
        panel.get_by_role("button", name=f"Copy {label}").click()
        panel.get_by_text("Copied to the clipboard.").wait_for()
        assert page.evaluate("navigator.clipboard.readText()") == value
    key_id = panel.get_by_label("Key ID").input_value()
    assert key_id
    assert key_id in page.locator("section:has(#access-title)").inner_text()
    assert (
        panel.get_by_role("link", name="TOV Plus API reference for partners")
        .get_attribute("href")
        .endswith("/redoc")
    )
    # the help on the secret field says where the partner issues it
    assert "Settings → API keys" in page.locator("#f-secrets-api_key-help").inner_text()


def test_create_form_error_keeps_what_was_typed_and_no_secret(page: Any, site: Site) -> None:
    _sign_in(page, site, site.planner)
    page.goto(f"{site.url}/occasions/{site.occasion_id}/integrations/new/printing_partner")
    page.get_by_label("Label").evaluate("el => el.removeAttribute('maxlength')")
    page.get_by_label("Label").fill("L" * 90)  # too long: refused as input, nothing saved
    page.get_by_label("Account ID").fill("typed-account")
    page.get_by_label("API base URL").fill("https://printer.example.com/api")
    page.get_by_label("API key").fill(API_KEY)
    page.get_by_role("button", name="Save as draft").click()
    page.wait_for_load_state()
    assert "80 characters" in page.locator("#label-error").inner_text()
    assert page.get_by_label("Account ID").input_value() == "typed-account"
    assert page.get_by_label("Label").input_value() == "L" * 90
    assert page.get_by_label("API key").input_value() == ""
    assert "type it again" in page.locator("#secrets-api_key-error").inner_text()
    assert API_KEY not in page.content()


def test_times_are_in_the_occasions_zone_with_utc_on_hover(page: Any, site: Site) -> None:
    _sign_in(page, site, site.planner)
    page.goto(_connection_page(site, site.labelled_id))
    created = page.locator(".page-head__lead time")
    shown = created.inner_text()
    assert shown.endswith(("EET", "EEST")), shown
    assert "UTC" in str(created.get_attribute("title"))
    assert "Times are shown in Europe/Kyiv" in page.locator("footer").inner_text()


def test_revoke_needs_the_label_typed(page: Any, site: Site) -> None:
    _sign_in(page, site, site.planner)
    page.goto(_connection_page(site, site.labelled_id))
    page.get_by_text("Revoke…").click()
    confirm = page.get_by_label("Type the label Menus and place cards to confirm")
    assert confirm.evaluate("el => el === document.activeElement")
    revoke = page.get_by_role("button", name="Yes, revoke this connection")
    confirm.fill("Printing partner")  # the adapter's name is not enough
    assert revoke.is_disabled()
    confirm.fill("menus and place cards")
    assert revoke.is_enabled()
    revoke.click()
    page.wait_for_load_state()
    assert "Revoked." in page.locator(".alert--success").inner_text()
    assert page.locator("#partner-setup").count() == 0


@pytest.mark.parametrize(("path", "ready"), [("/docs", ".opblock"), ("/redoc", "[data-section-id]")])
def test_offline_api_docs_render_the_schema(page: Any, site: Site, path: str, ready: str) -> None:
    page.goto(site.url + path, timeout=60_000)
    page.locator(ready).first.wait_for(timeout=60_000)  # a large bundle on a busy machine
    assert "/v1/admin/integrations" in page.content()


def test_the_page_updates_itself_while_a_sync_runs(page: Any, site: Site) -> None:
    _sign_in(page, site, site.planner)
    page.goto(_connection_page(site, site.quiet_id))
    page.get_by_role("button", name="Sync now").click()
    page.wait_for_load_state()
    live = page.locator(".live")
    assert "A sync is waiting to start" in live.inner_text()
    assert "run_" not in live.inner_text()
    with site.rt.db.write() as session:  # what a worker would write when the run finishes
        session.execute(
            update(SyncRun)
            .where(SyncRun.connection_id == site.quiet_id)
            .values(state="succeeded", started_at=utcnow(), finished_at=utcnow())
        )
    page.locator(".live[hidden]").wait_for(state="attached", timeout=15_000)  # reloaded by itself
    assert "Succeeded" in page.locator('ol[aria-label="Recent sync runs"]').inner_text()


def test_a_new_occasion_takes_the_browsers_time_zone(browser: Any, site: Site) -> None:
    context = browser.new_context(viewport=LAPTOP, timezone_id="Asia/Tokyo")
    context.set_default_timeout(10_000)
    try:
        tab = context.new_page()
        _sign_in(tab, site, site.planner)
        assert tab.get_by_label("Time zone").input_value() == "Asia/Tokyo"
        tab.get_by_label("Name").fill("Tokyo reception")
        tab.get_by_label("Starts on").fill("2027-09-01")
        tab.get_by_role("button", name="Create occasion").click()
        tab.wait_for_load_state()
        assert "Occasion created." in tab.locator(".alert--success").inner_text()
        occasion_id = tab.url.split("/occasions/")[1].split("/")[0]
        with site.rt.db.read() as session:
            assert occasions.time_zone_of(session, occasion_id) == "Asia/Tokyo"
        assert "Times are shown in Asia/Tokyo" in tab.locator("footer").inner_text()
    finally:
        context.close()
