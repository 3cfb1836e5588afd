"""The whole OAuth2 connect flow of ``guest_messaging`` in real Chromium, against the partner simulator:
the planner signs in, clicks "Connect with Guest messaging", allows at the simulator, lands back on the
connection authorized, enables it and it syncs the partner's RSVPs; a Deny on a second connection
leaves it a draft with an activity entry. A thread stands in for the worker (the server has none)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests import factories
from tests.support.web import PASSWORD, person
from tests.web.browser.server import CHROMIUM, CHROMIUM_ARGS, LAPTOP, PageServer
from tovplus.db.migrate import upgrade
from tovplus.db.models import Activity, OAuthGrant, SyncedRecord, SyncRun
from tovplus.partner_sim import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, BackgroundServer, SimState, create_app
from tovplus.partner_sim.messaging_state import MessagingState
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.keyring import generate_key
from tovplus.services import oauth, sync
from tovplus.services.connections import ConnectionCreate, create_connection
from tovplus.settings import Settings

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(120)]


class StandInWorker:
    """Runs queued sync runs every 0.3 s until stopped (what ``tovplus worker`` would do)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.wait(0.3):
            with self.rt.db.read() as session:
                ids = list(session.scalars(select(SyncRun.id).where(SyncRun.state == "queued")))
            for run_id in ids:
                sync.execute_run(self.rt, run_id, worker_id="stand-in")


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


def test_planner_connects_guest_messaging_at_the_simulator_and_it_syncs(rt: Runtime) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    planner = person(rt)
    occasion_id = factories.occasion(rt, planner)
    with rt.db.write() as session:
        oauth.set_client(
            session, rt.keyring, "guest_messaging", DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, actor="test"
        )
    messaging = MessagingState()
    messaging.upsert_rsvp("gst_iryna", "yes")
    messaging.upsert_rsvp("gst_maksym", "maybe")
    errors: list[str] = []
    worker = StandInWorker(rt)
    with (
        BackgroundServer(create_app(SimState(demo=False), messaging)) as sim,
        PageServer(rt) as server,
        sync_playwright() as pw,
    ):
        rt.settings = rt.settings.model_copy(update={"public_base_url": server.url})
        partner = f"{sim.url}/messaging"
        config = {"sender_name": "Olena & Taras", "api_base_url": partner, "oauth_base_url": partner}
        allowed, denied = (
            create_connection(
                rt, planner.caller, occasion_id, ConnectionCreate("guest_messaging", config=config)
            ).connection.id
            for _ in range(2)
        )
        worker.thread.start()
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=LAPTOP, timezone_id="UTC").new_page()
            page.set_default_timeout(15_000)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.goto(server.url + "/sign-in")
            page.get_by_label("Email").fill(planner.email)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_load_state()
            base = f"{server.url}/occasions/{occasion_id}/integrations/connections"

            page.goto(f"{base}/{allowed}")
            page.locator("#authorization").get_by_role("button", name="Connect with Guest messaging").click()
            page.wait_for_url(f"{partner}/oauth/authorize?*")
            page.get_by_role("button", name="Allow").click()
            page.wait_for_url(f"{base}/{allowed}?oauth=authorized")
            assert "granted access" in page.locator("#oauth-outcome").inner_text()
            page.get_by_role("button", name="Enable").click()
            page.wait_for_load_state()
            page.get_by_role("button", name="Sync now").click()
            records = page.locator("section[aria-labelledby=records-title]")
            for _ in range(50):  # the stand-in worker syncs within a second or two
                page.reload()
                if "gst_maksym" in records.inner_text():
                    break
                page.wait_for_timeout(300)
            text = records.inner_text()
            with rt.db.read() as session:
                runs = [(r.state, r.error) for r in session.scalars(select(SyncRun))]
            assert "gst_iryna" in text, (text, runs)
            assert "gst_maksym" in text, text

            page.goto(f"{base}/{denied}")
            page.locator("#authorization").get_by_role("button", name="Connect with Guest messaging").click()
            page.wait_for_url(f"{partner}/oauth/authorize?*")
            page.get_by_role("button", name="Deny").click()
            page.wait_for_url(f"{base}/{denied}?oauth=denied")
            page.locator("#authorization").get_by_role(
                "button", name="Connect with Guest messaging"
            ).wait_for()
            html = page.content()
        finally:
            worker.stop.set()
            worker.thread.join(10)
            browser.close()
    with rt.db.read() as session:
        grants = list(session.scalars(select(OAuthGrant)))
        assert [g.connection_id for g in grants] == [allowed]
        token = oauth.open_access_token(grants[0], rt.keyring)
        kept = {
            r.external_id
            for r in session.scalars(select(SyncedRecord).where(SyncedRecord.connection_id == allowed))
        }
        denied_kinds = set(session.scalars(select(Activity.kind).where(Activity.connection_id == denied)))
    assert kept == {"gst_iryna", "gst_maksym"}
    assert "connection.authorization_denied" in denied_kinds
    assert token
    assert token not in html
    assert messaging.snapshot()["reuse_attempts"] == 0
    assert errors == []
