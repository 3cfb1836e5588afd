"""The oauth2 adapter the flow tests connect, and the steps of the connect flow as a browser takes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests import factories
from tests.oauth.fake_partner import CLIENT_ID, CLIENT_SECRET, FakePartner
from tests.support.web import WebUser
from tovplus.integrations.auth import OAuth2Auth
from tovplus.integrations.contract import Adapter, Direction, Mode, SyncContext, SyncResult
from tovplus.integrations.fields import Field, FieldType
from tovplus.integrations.registry import AdapterRegistry, default_registry
from tovplus.runtime import Runtime
from tovplus.services import oauth

KEY = "demo_messenger"
SCOPES = ("messages.send", "rsvps.read")


class DemoMessengerAdapter(Adapter):
    """A partner that only offers OAuth2 (what ``guest_messaging`` will be, reduced to the flow)."""

    integration_key = KEY
    name = "Demo Messenger"
    description = "Sends invitations; connected with OAuth2."
    category = "messaging"
    direction = Direction.BIDIRECTIONAL
    mode = Mode.PULL
    action_keys = ("occasion.read",)
    supports_background_sync = True
    config_fields = (
        Field("api_base_url", "API base URL", FieldType.URL, required=True),
        Field("oauth_base_url", "OAuth base URL", FieldType.URL, required=True),
    )
    auth = OAuth2Auth("{oauth_base_url}/oauth/authorize", "{oauth_base_url}/oauth/token", scopes=SCOPES)

    def sync(self, ctx: SyncContext) -> SyncResult:
        return SyncResult(summary="nothing yet")


def registry() -> AdapterRegistry:
    reg = default_registry(plugins=False)
    reg.register(DemoMessengerAdapter)
    return reg


def set_demo_client(rt: Runtime) -> None:
    with rt.db.write() as session:
        oauth.set_client(session, rt.keyring, KEY, CLIENT_ID, CLIENT_SECRET, actor="test")


@dataclass
class Planner:
    """A planner with a bearer token (the API) and a signed-in browser (the pages' cookie)."""

    user: factories.User
    browser: WebUser

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.user.token}"}


def planner(client: Any, rt: Runtime) -> Planner:
    user = factories.user(rt, "planner", password=factories.PASSWORD)
    return Planner(user, WebUser(client, user))


def demo_connection(client: Any, who: Planner, occasion_id: str, partner: FakePartner, **body: Any) -> Any:
    payload = {
        "integration_key": KEY,
        "config": {"api_base_url": partner.url + "/api", "oauth_base_url": partner.url},
        **body,
    }
    return client.post(
        f"/v1/occasions/{occasion_id}/integrations/connections", json=payload, headers=who.headers
    )


def connection_path(occasion_id: str, connection_id: str) -> str:
    return f"/v1/occasions/{occasion_id}/integrations/connections/{connection_id}"


def authorize(client: Any, who: Planner, occasion_id: str, connection_id: str, **body: Any) -> Any:
    return client.post(
        connection_path(occasion_id, connection_id) + "/authorize", json=body or None, headers=who.headers
    )


def partner_answer(authorize_url: str, *, allow: bool = True) -> str:
    """What the partner's Allow (or Deny) sends the browser back to: the callback's path and query."""
    parts = urlsplit(authorize_url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    decide = f"{parts.scheme}://{parts.netloc}/oauth/decide?" + urlencode(
        {**params, "decision": "allow" if allow else "deny"}
    )
    location = httpx.get(decide, follow_redirects=False).headers["location"]
    back = urlsplit(location)
    return f"{back.path}?{back.query}"


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
