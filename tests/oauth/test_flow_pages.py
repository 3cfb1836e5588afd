"""The connection page's OAuth2 part (TestClient): the buttons, the words, the outcome, and that no
token value shows in any page or API answer."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from tests import factories
from tests.oauth.fake_partner import CLIENT_SECRET, FakePartner
from tests.oauth.flow_support import authorize, partner_answer
from tests.oauth.test_flow_connect import connect, setup
from tovplus.db.models import OAuthGrant
from tovplus.integrations.auth import AuthorizationStatus
from tovplus.runtime import Runtime


def page_url(occasion_id: str, connection_id: str) -> str:
    return f"/occasions/{occasion_id}/integrations/connections/{connection_id}"


def test_a_pending_connection_offers_connect_and_the_form_may_go_to_the_partner(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    r = who.browser.get(page_url(occasion_id, connection_id))
    assert r.status_code == 200, r.text
    assert "Connect with Demo Messenger" in r.text
    assert "Not connected yet: Demo Messenger has not granted access." in r.text
    assert "send messages" in r.text
    assert "read rsvps" in r.text
    assert f"form-action 'self' {fake_partner.url};" in r.headers["content-security-policy"]
    csrf = who.browser.csrf(page_url(occasion_id, connection_id))
    go = who.browser.post(page_url(occasion_id, connection_id) + "/authorize", csrf=csrf)
    assert go.status_code == 303, go.text
    assert go.headers["location"].startswith(fake_partner.url + "/oauth/authorize?")
    no_csrf = who.browser.post(page_url(occasion_id, connection_id) + "/authorize", csrf="forged")
    assert no_csrf.status_code == 403


def test_an_api_key_connection_page_keeps_the_strict_policy(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, _ = setup(flow_client, flow_runtime, fake_partner)
    r = flow_client.post(
        f"/v1/occasions/{occasion_id}/integrations/connections",
        json={"integration_key": "printing_partner", "config": dict(factories.PRINTING_CONFIG)},
        headers=who.headers,
    )
    assert r.status_code == 201, r.text
    page = who.browser.get(page_url(occasion_id, r.json()["connection"]["id"]))
    assert page.status_code == 200
    assert "form-action 'self';" in page.headers["content-security-policy"]
    assert "Access at" not in page.text


def test_no_client_configured_is_said_plainly_and_the_button_is_gone(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner, configured=False)
    r = who.browser.get(page_url(occasion_id, connection_id))
    assert "Demo Messenger cannot be connected yet." in r.text
    assert "tovplus oauth set-client demo_messenger" in r.text
    assert ">Connect with Demo Messenger</button>" not in r.text
    go = who.browser.post(page_url(occasion_id, connection_id) + "/authorize")
    assert go.status_code == 303
    assert go.headers["location"] == page_url(occasion_id, connection_id)
    shown = who.browser.follow(go)
    assert "the operator has not set up its OAuth client" in shown.text


def test_after_the_partner_the_page_says_what_happened(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    url = authorize(flow_client, who, occasion_id, connection_id).json()["authorize_url"]
    denied = who.browser.follow(who.browser.get(partner_answer(url, allow=False), follow_redirects=False))
    assert "Access was not granted at Demo Messenger; nothing changed." in denied.text
    assert "Connect with Demo Messenger" in denied.text
    done = who.browser.follow(connect(flow_client, who, occasion_id, connection_id))
    assert "Connected: Demo Messenger granted access." in done.text
    assert "Connect with Demo Messenger" not in done.text
    assert ">Reconnect</button>" in done.text  # the small one, beside the title
    assert "It may" in done.text


def test_reconnect_required_offers_reconnect(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    assert connect(flow_client, who, occasion_id, connection_id).status_code == 303
    with flow_runtime.db.write() as session:
        session.execute(
            update(OAuthGrant)
            .where(OAuthGrant.connection_id == connection_id)
            .values(status=AuthorizationStatus.RECONNECT_REQUIRED)
        )
    r = who.browser.get(page_url(occasion_id, connection_id))
    assert "no longer accepts the access it granted" in r.text
    assert 'class="btn btn--primary">Reconnect</button>' in r.text


def test_no_token_or_client_secret_in_any_page_answer_or_log(
    flow_client: TestClient,
    flow_runtime: Runtime,
    fake_partner: FakePartner,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    assert connect(flow_client, who, occasion_id, connection_id).status_code == 303
    api = f"/v1/occasions/{occasion_id}/integrations"
    answers = [
        who.browser.get(page_url(occasion_id, connection_id)).text,
        who.browser.get(f"/occasions/{occasion_id}/integrations").text,
        flow_client.get(f"{api}/connections/{connection_id}", headers=who.headers).text,
        flow_client.get(api, headers=who.headers).text,
        flow_client.get(f"{api}/activity", headers=who.headers).text,
        flow_client.get(f"{api}/connections/{connection_id}/diagnostics", headers=who.headers).text,
        authorize(flow_client, who, occasion_id, connection_id).text,
    ]
    assert fake_partner.state.access_tokens
    assert CLIENT_SECRET in fake_partner.state.secrets_given
    for secret in fake_partner.state.secrets_given:
        for text in [*answers, caplog.text]:
            assert secret not in text


def test_a_planner_adds_an_oauth2_connection_on_the_pages_and_lands_on_connect(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, _ = setup(flow_client, flow_runtime, fake_partner)
    new = f"/occasions/{occasion_id}/integrations/new/demo_messenger"
    form = who.browser.get(new)
    assert form.status_code == 200, form.text
    assert 'name="secrets.' not in form.text
    r = who.browser.post(
        new,
        {
            "config.api_base_url": fake_partner.url + "/api",
            "config.oauth_base_url": fake_partner.url,
            "scope.type": "occasion",
            "action_keys.present": "1",
            "action_keys": ["occasion.read"],
            "intent": "draft",
        },
        csrf=who.browser.csrf(new),
    )
    assert r.status_code == 303, r.text
    page = who.browser.follow(r)
    assert ">Connect with Demo Messenger</button>" in page.text
