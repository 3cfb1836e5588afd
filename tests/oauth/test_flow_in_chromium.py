"""The connect flow in real Chromium against the fake partner: Connect, Allow, back on the page and
authorized; Deny leaves the draft as it was, with an activity entry. (The full flow against the
partner simulator comes with ``guest_messaging``.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tests import factories
from tests.oauth.fake_partner import FakePartner
from tests.oauth.flow_support import KEY, registry, set_demo_client
from tests.support.web import person
from tests.web.browser.kit import chromium, page_runtime, sign_in
from tests.web.browser.server import PageServer
from tovplus.db.models import Activity, OAuthGrant
from tovplus.runtime import Runtime
from tovplus.services.connections import ConnectionCreate, create_connection

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(120)]


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    with page_runtime(tmp_path, registry()) as runtime:
        yield runtime


def test_planner_connects_with_the_partner_and_a_deny_changes_nothing(rt: Runtime) -> None:
    planner = person(rt)
    occasion_id = factories.occasion(rt, planner)
    set_demo_client(rt)
    errors: list[str] = []
    with FakePartner() as partner, PageServer(rt) as server, chromium(errors) as page:
        rt.settings = rt.settings.model_copy(update={"public_base_url": server.url})
        config = {"api_base_url": partner.url + "/api", "oauth_base_url": partner.url}
        allowed, denied = (
            create_connection(
                rt, planner.caller, occasion_id, ConnectionCreate(integration_key=KEY, config=config)
            ).connection.id
            for _ in range(2)
        )
        sign_in(page, server.url, planner)
        base = f"{server.url}/occasions/{occasion_id}/integrations/connections"

        page.goto(f"{base}/{allowed}")
        section = page.locator("#authorization")
        assert "Not connected yet" in section.inner_text()
        section.get_by_role("button", name="Connect with Demo Messenger").click()
        page.wait_for_url(f"{partner.url}/oauth/authorize?*")
        assert "messages.send rsvps.read" in page.locator("body").inner_text()
        page.locator("#allow").click()
        page.wait_for_url(f"{base}/{allowed}?oauth=authorized")
        assert "Connected: Demo Messenger granted access." in page.locator("#oauth-outcome").inner_text()
        assert "send messages" in page.locator("#authorization").inner_text()
        page.locator("#authorization").get_by_role("button", name="Reconnect").wait_for()

        page.goto(f"{base}/{denied}")
        page.locator("#authorization").get_by_role("button", name="Connect with Demo Messenger").click()
        page.wait_for_url(f"{partner.url}/oauth/authorize?*")
        page.locator("#deny").click()
        page.wait_for_url(f"{base}/{denied}?oauth=denied")
        assert "Access was not granted" in page.locator("#oauth-outcome").inner_text()
        page.locator("#authorization").get_by_role("button", name="Connect with Demo Messenger").wait_for()
        html = page.content()
    with rt.db.read() as session:
        assert [g.connection_id for g in session.scalars(select(OAuthGrant))] == [allowed]
        kinds = list(session.scalars(select(Activity.kind).where(Activity.connection_id == denied)))
    assert "connection.authorization_denied" in kinds
    for secret in partner.state.secrets_given:
        assert secret not in html
    assert errors == []
