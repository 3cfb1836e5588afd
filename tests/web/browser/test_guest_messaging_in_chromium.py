"""The whole OAuth2 connect flow of ``guest_messaging`` in real Chromium, against the partner simulator:
the planner signs in, clicks "Connect with Guest messaging", allows at the simulator, lands back on the
connection authorized, enables it and it syncs the partner's RSVPs; a Deny on a second connection
leaves it a draft with an activity entry. A thread stands in for the worker (the server has none)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests import factories
from tests.support.web import person
from tests.web.browser.kit import StandInWorker, chromium, sign_in
from tests.web.browser.server import PageServer
from tovplus.db.models import Activity, OAuthGrant, SyncedRecord, SyncRun
from tovplus.partner_sim import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, BackgroundServer, SimState, create_app
from tovplus.partner_sim.messaging_state import MessagingState
from tovplus.runtime import Runtime
from tovplus.services import oauth
from tovplus.services.connections import ConnectionCreate, create_connection

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(120)]


def test_planner_connects_guest_messaging_at_the_simulator_and_it_syncs(rt: Runtime) -> None:
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
    with (
        BackgroundServer(create_app(SimState(demo=False), messaging)) as sim,
        PageServer(rt) as server,
        StandInWorker(rt),
        chromium(errors) as page,
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
        sign_in(page, server.url, planner)
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
        page.locator("#authorization").get_by_role("button", name="Connect with Guest messaging").wait_for()
        html = page.content()
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
