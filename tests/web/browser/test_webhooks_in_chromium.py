"""Webhooks and support on the pages, in real Chromium: create an endpoint (secret shown once),
see a failed delivery in the log, resend it, see it delivered; the Needs attention list; the
diagnostics link and the suspension banner on a connection page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.web import PASSWORD, Person, occasion, person
from tests.web.browser.server import CHROMIUM, CHROMIUM_ARGS, LAPTOP, PageServer
from tests.webhooks.test_webhooks_delivery import Receiver
from tovplus.db.migrate import upgrade
from tovplus.db.types import utcnow
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.keyring import generate_key
from tovplus.services import connections, notifications, support, webhooks
from tovplus.services.connections import ConnectionCreate
from tovplus.settings import Settings

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(120)]


@dataclass
class Site:
    rt: Runtime
    url: str
    planner: Person
    admin: Person
    occasion_id: str
    connection_id: str
    receiver: Receiver


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("webhook-pages")
    settings = Settings(
        environment="test",
        data_dir=tmp,
        database_url=f"sqlite:///{tmp / 'pages.db'}",
        queue_url="memory://",
        secret_keys=generate_key(),
        allow_private_urls=True,
    )
    # one attempt, then failed: the log shows it at once (a setting the environment cannot give)
    rt = build_runtime(settings.model_copy(update={"webhook_retry_delays": ()}))
    upgrade(rt.db.engine)
    planner, admin = person(rt), person(rt, "admin")
    occ = occasion(rt, planner, "Olena & Taras — wedding")
    con = connections.create_connection(
        rt,
        planner.caller,
        occ,
        ConnectionCreate(
            "printing_partner",
            config={"account_id": "olena-taras", "api_base_url": "https://printer.example.com/api"},
            secrets={"api_key": "pk_live_browser_webhooks_0001"},
            state="enabled",
        ),
    ).connection["id"]
    receiver = Receiver()
    try:
        with PageServer(rt) as server:
            yield Site(rt, server.url, planner, admin, occ, con, receiver)
    finally:
        receiver.stop()
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
    context = browser.new_context(viewport=LAPTOP, timezone_id="UTC", accept_downloads=True)
    context.set_default_timeout(10_000)
    errors: list[str] = []
    p = context.new_page()
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    context.close()
    assert errors == []


def sign_in(page: Any, site: Site, who: Person) -> None:
    page.goto(site.url + "/sign-in")
    page.get_by_label("Email").fill(who.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def deliver_due(rt: Runtime) -> None:
    for delivery_id in webhooks.requeue_due_deliveries(rt, utcnow()):
        webhooks.deliver(rt, delivery_id, worker_id="browser-test")


def test_create_endpoint_see_a_failed_delivery_resend_it_see_it_delivered(page: Any, site: Site) -> None:
    sign_in(page, site, site.planner)
    page.goto(f"{site.url}/occasions/{site.occasion_id}/integrations")
    webhooks_section = page.locator("#webhooks")
    assert webhooks_section.get_by_role("heading", name="Webhooks").is_visible()
    page.get_by_label("Endpoint URL").fill(site.receiver.url)
    page.get_by_role("button", name="Add endpoint").click()
    page.wait_for_load_state()
    secret = page.locator("#signing-secret").input_value()
    assert secret.startswith("whsec_")
    assert "You will not see this secret again" in page.locator("#onetime").inner_text()

    # the receiver is down: the test event fails
    site.receiver.script = [(500, {})]
    page.get_by_role("button", name="Send test event").click()
    page.wait_for_load_state()
    assert "A test event was queued" in page.locator(".alert--success").inner_text()
    endpoint_url = page.url  # the endpoint's own page
    assert secret not in page.content()  # shown once only
    deliver_due(site.rt)
    page.goto(endpoint_url)
    row = page.locator("#message-log tbody tr").first
    assert row.get_attribute("data-state") == "failed"
    assert "HTTP 500" in row.inner_text()
    webhook_id = row.get_attribute("data-webhook-id")

    # back up: resend it, and it is delivered with the same webhook-id
    row.get_by_role("button", name="Resend").click()
    page.wait_for_load_state()
    assert f"Delivery {webhook_id} was queued again" in page.locator(".alert--success").inner_text()
    deliver_due(site.rt)
    page.reload()
    row = page.locator(f'#message-log tr[data-webhook-id="{webhook_id}"]')
    assert row.get_attribute("data-state") == "delivered"
    assert "HTTP 200" in row.inner_text()
    first, second = site.receiver.received[-2:]
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == webhook_id
    assert json.loads(second.body)["type"] == "webhook.test"
    Webhook(secret).verify(second.body, second.headers)

    # the integrations page lists the endpoint as active
    page.goto(f"{site.url}/occasions/{site.occasion_id}/integrations")
    card = page.locator("#webhooks .webhook").first
    assert "active" in card.inner_text()


def test_needs_attention_diagnostics_and_the_suspension_banner(page: Any, site: Site) -> None:
    change = notifications.HealthChange(
        site.occasion_id,
        site.connection_id,
        "printing_partner",
        "healthy",
        "failing",
        ("The printer refused our API key (HTTP 401).",),
    )
    with site.rt.db.write() as session:
        notifications.health_changed(session, change, name="Printing partner")
    sign_in(page, site, site.planner)
    page.goto(f"{site.url}/occasions/{site.occasion_id}/integrations")
    attention = page.locator("#needs-attention")
    assert "Printing partner connection needs attention" in attention.inner_text()

    support.suspend_integration(site.rt, site.admin.caller, "printing_partner", "Partner outage")
    try:
        page.goto(f"{site.url}/occasions/{site.occasion_id}/integrations/connections/{site.connection_id}")
        assert "Partner outage" in page.locator("#suspended-banner").inner_text()
        with page.expect_download() as info:
            page.get_by_role("link", name="Download diagnostics").click()
        doc = json.loads(Path(info.value.path()).read_text())
        assert doc["connection"]["id"] == site.connection_id
        assert "pk_live_browser_webhooks_0001" not in json.dumps(doc)
    finally:
        support.resume_integration(site.rt, site.admin.caller, "printing_partner")

    page.goto(f"{site.url}/occasions/{site.occasion_id}/integrations")
    attention.get_by_role("button", name="Dismiss").click()
    page.wait_for_load_state()
    assert page.locator("#needs-attention").count() == 0
