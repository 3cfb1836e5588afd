"""The messaging simulator's authorization page in real Chromium: Allow lands back on the
redirect URI with a code that exchanges for working tokens; Deny lands back with access_denied."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.web.browser.server import CHROMIUM, CHROMIUM_ARGS, LAPTOP
from tovplus.partner_sim import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, BackgroundServer, SimState, create_app
from tovplus.partner_sim.messaging import s256

pytestmark = [pytest.mark.no_db, pytest.mark.timeout(120)]


def test_allow_and_deny_at_the_simulator_in_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with BackgroundServer(create_app(SimState(demo=False))) as sim, sync_playwright() as pw:
        base = f"{sim.url}/messaging"
        back = f"{sim.url}/healthz"  # stands in for TOV Plus's callback: any page to land on
        verifier = secrets.token_urlsafe(48)
        query = {
            "response_type": "code",
            "client_id": DEMO_CLIENT_ID,
            "redirect_uri": back,
            "state": "st-chromium",
            "scope": "messages.send rsvps.read",
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
        url = str(httpx.URL(f"{base}/oauth/authorize", params=query))
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=LAPTOP).new_page()
            page.goto(url)
            assert page.locator("h1").inner_text() == "Allow TOV Plus to send messages and read RSVPs?"
            page.get_by_role("button", name="Allow").click()
            page.wait_for_url(f"{back}?*")
            landed = parse_qs(urlsplit(page.url).query)
            assert landed["state"] == ["st-chromium"]
            tokens = httpx.post(
                f"{base}/oauth/token",
                data={
                    "grant_type": "authorization_code",
                    "code": landed["code"][0],
                    "redirect_uri": back,
                    "code_verifier": verifier,
                },
                auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
            )
            assert tokens.status_code == 200, tokens.text
            me = httpx.get(f"{base}/me", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"})
            assert me.status_code == 200

            page.goto(url)
            page.get_by_role("button", name="Deny").click()
            page.wait_for_url(f"{back}?*")
            assert parse_qs(urlsplit(page.url).query) == {
                "error": ["access_denied"],
                "state": ["st-chromium"],
            }
        finally:
            browser.close()
