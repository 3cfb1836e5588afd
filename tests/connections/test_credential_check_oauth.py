"""The credential check of an OAuth2 adapter: no grant yet, a grant (the bearer client from
``oauth.authorized_http`` and the access token reach the adapter, never the answer), a refused grant.

``authorized_http`` is the refresh work's (another branch); here a stand-in with its signature
records what it was asked and answers as the real one would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
import pytest
from fastapi.testclient import TestClient

from tests import factories
from tests.conftest import Api
from tests.support.sync import Made, activity_of, connection, planner
from tovplus.app import create_app
from tovplus.errors import CredentialsRejected
from tovplus.integrations.auth import OAuth2Auth
from tovplus.integrations.contract import Adapter, CheckContext, CheckResult, Direction, Mode
from tovplus.integrations.fields import Field, FieldType
from tovplus.integrations.registry import AdapterRegistry
from tovplus.runtime import Runtime, build_runtime
from tovplus.services import oauth
from tovplus.services.connections import ConnectionCreate, create_connection
from tovplus.settings import Settings

TOKEN = "at_SECRETSECRETSECRET_0001"


class OAuthPartner(Adapter):
    integration_key = "oauth_partner"
    name = "OAuth partner"
    description = "A partner that only speaks OAuth2."
    category = "messaging"
    direction = Direction.OUTBOUND
    mode = Mode.PUSH
    config_fields = (
        Field("api_base_url", "API base URL", FieldType.URL, required=True),
        Field("oauth_base_url", "OAuth base URL", FieldType.URL, required=True),
    )
    auth = OAuth2Auth("{oauth_base_url}/oauth/authorize", "{oauth_base_url}/oauth/token", ("me.read",))
    seen: ClassVar[list[tuple[str | None, dict[str, str]]]] = []

    def check(self, ctx: CheckContext) -> CheckResult:
        type(self).seen.append((ctx.access_token, dict(ctx.secrets)))
        return CheckResult(summary="signed in as Acme Messaging")


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    registry = AdapterRegistry()
    registry.register(OAuthPartner)
    runtime = build_runtime(settings, registry=registry)
    OAuthPartner.seen.clear()
    yield runtime
    runtime.close()


@pytest.fixture
def web_client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def made(rt: Runtime) -> Made:
    caller, token = planner(rt)
    occasion_id = factories.occasion(rt, caller)
    result = create_connection(
        rt,
        caller,
        occasion_id,
        ConnectionCreate(
            "oauth_partner",
            config={
                "api_base_url": "https://api.partner.example",
                "oauth_base_url": "https://id.partner.example",
            },
            state="draft",
        ),
    )
    return Made(occasion_id, result.connection["id"], token, caller)


def _check(client: TestClient, made: Made) -> dict[str, Any]:
    url = f"/v1/occasions/{made.occasion_id}/integrations/connections/{made.connection_id}/check"
    r = client.post(url, headers=Api.auth(made.token))
    assert r.status_code == 200, r.text
    return dict(r.json()["check"])


def _grant(rt: Runtime, made: Made) -> None:
    with rt.db.write() as session:
        oauth.store_grant(
            session, rt.keyring, made.connection_id, oauth.TokenSet(TOKEN, "rt_x"), actor="test"
        )


def test_without_a_grant_it_says_connect_first_and_asks_nobody(
    rt: Runtime, web_client: TestClient, made: Made, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    monkeypatch.setattr(oauth, "authorized_http", lambda *a, **k: asked.append("x"))
    result = _check(web_client, made)
    assert result["ok"] is False
    assert result["problems"] == ["Not connected yet: connect with OAuth partner first."]
    assert asked == []
    assert OAuthPartner.seen == []
    assert connection(rt, made.connection_id).sync_health == "unknown"


def test_with_a_grant_the_adapter_gets_the_token_and_the_answer_never_shows_it(
    rt: Runtime, web_client: TestClient, made: Made, monkeypatch: pytest.MonkeyPatch
) -> None:
    _grant(rt, made)
    calls: list[tuple[str, str]] = []

    def authorized_http(
        runtime: Runtime, connection_id: str, base: httpx.Client, *, owner: str
    ) -> tuple[httpx.Client, str]:
        calls.append((connection_id, owner))
        return base, TOKEN

    monkeypatch.setattr(oauth, "authorized_http", authorized_http)
    result = _check(web_client, made)
    assert result["ok"] is True
    assert result["summary"] == "signed in as Acme Messaging"
    assert [c[0] for c in calls] == [made.connection_id]
    assert calls[0][1]  # a lease owner of its own
    assert OAuthPartner.seen == [(TOKEN, {})]  # the token, and no api-key secrets
    [entry] = activity_of(rt, made.connection_id, "connection.checked")
    assert TOKEN not in json.dumps(result) + entry.summary + json.dumps(entry.details)


def test_a_refused_grant_is_ok_false_with_the_reason(
    rt: Runtime, web_client: TestClient, made: Made, monkeypatch: pytest.MonkeyPatch
) -> None:
    _grant(rt, made)

    def refused(*args: Any, **kw: Any) -> tuple[httpx.Client, str]:
        raise CredentialsRejected("OAuth partner refused this connection's access: reconnect it.")

    monkeypatch.setattr(oauth, "authorized_http", refused)
    result = _check(web_client, made)
    assert result["ok"] is False
    assert result["problems"] == ["OAuth partner refused this connection's access: reconnect it."]
    assert OAuthPartner.seen == []
    [entry] = activity_of(rt, made.connection_id, "connection.checked")
    assert entry.details["ok"] is False
