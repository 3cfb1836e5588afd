"""A test OAuth2 adapter, a fake partner (token endpoint with rotating refresh tokens, and an API),
and the set-up of an authorized connection.

:class:`TokenIssuer` is the partner's token logic, shared by the in-memory transport
(:class:`FakePartner`, an ``httpx.MockTransport`` handler) and the in-test HTTP server of the
process race test (``tests/processes/test_oauth_refresh_race.py``).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
from sqlalchemy import update

from tests import factories
from tovplus.db.models import Connection, OAuthGrant
from tovplus.db.states import ConnectionState
from tovplus.db.types import utcnow
from tovplus.integrations.actions import ActionContext, ActionResult, ActionSpec
from tovplus.integrations.auth import OAuth2Auth
from tovplus.integrations.contract import Adapter, Direction, Mode, RecordUpsert, SyncContext, SyncResult
from tovplus.integrations.fields import Field, FieldType
from tovplus.integrations.registry import AdapterRegistry
from tovplus.runtime import Runtime
from tovplus.services import oauth
from tovplus.services.connections import ConnectionCreate, create_connection

CLIENT_ID = "tovplus-test-client"
CLIENT_SECRET = "cs_test_0123456789abcdef"


class OAuthPartnerAdapter(Adapter):
    """Lists the partner's items with the bearer its context's client sends; one action, ``ping``."""

    integration_key = "oauth_partner"
    name = "Oauth Partner"
    description = "A partner reached with OAuth2 (tests)."
    category = "messaging"
    direction = Direction.INBOUND
    mode = Mode.PULL
    config_fields = (
        Field("api_base_url", "API base URL", FieldType.URL, required=True),
        Field("oauth_base_url", "OAuth base URL", FieldType.URL, required=True),
    )
    supports_background_sync = True
    auth = OAuth2Auth(
        authorize_url="{oauth_base_url}/oauth/authorize",
        token_url="{oauth_base_url}/oauth/token",
        scopes=("items.read",),
    )
    actions = (ActionSpec("ping", "Ping", "Tells the partner hello."),)

    def sync(self, ctx: SyncContext) -> SyncResult:
        r = ctx.http.get(f"{ctx.config['api_base_url']}/items")
        if r.status_code == 401:
            from tovplus.errors import CredentialsRejected

            raise CredentialsRejected("The partner refused the access token.")
        r.raise_for_status()
        items = r.json()["items"]
        return SyncResult(
            records=[RecordUpsert("item", i["id"], dict(i)) for i in items], summary=f"{len(items)} items"
        )

    def perform(self, action_key: str, input: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
        r = ctx.http.post(f"{ctx.config['api_base_url']}/ping", json={})
        r.raise_for_status()
        return ActionResult(summary="pinged")


def registry() -> AdapterRegistry:
    reg = AdapterRegistry()
    reg.register(OAuthPartnerAdapter)
    return reg


@dataclass
class TokenIssuer:
    """A partner's token endpoint: access tokens expiring in ``lifetime`` s, refresh tokens that
    rotate on every use and are refused (``invalid_grant``) when used again."""

    lifetime: float = 3600.0
    #: Refresh tokens issued and not used yet, with when they were issued.
    live_refresh: dict[str, float] = field(default_factory=dict)
    used_refresh: set[str] = field(default_factory=set)
    #: Access token → its expiry (time.time()).
    access: dict[str, float] = field(default_factory=dict)
    refreshes: list[dict[str, Any]] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    #: Fault switches.
    refuse_grant: bool = False
    down: bool = False
    rotate: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self) -> dict[str, Any]:
        """A new pair (as a code exchange would give)."""
        with self.lock:
            return self._issue_locked()

    def _issue_locked(self) -> dict[str, Any]:
        access, refresh = f"at_{secrets.token_hex(12)}", f"rt_{secrets.token_hex(12)}"
        now = time.time()
        self.access[access] = now + self.lifetime
        self.live_refresh[refresh] = now
        return {"access_token": access, "refresh_token": refresh, "expires_in": self.lifetime}

    def refresh(self, refresh_token: str) -> tuple[int, dict[str, Any]]:
        """``(status, body)`` of ``grant_type=refresh_token``."""
        with self.lock:
            if self.down:
                return 503, {"error": "temporarily_unavailable"}
            if self.refuse_grant:
                return 400, {"error": "invalid_grant", "error_description": "revoked"}
            if refresh_token in self.used_refresh:
                self.reused.append(refresh_token)
                return 400, {"error": "invalid_grant", "error_description": "refresh token reused"}
            issued = self.live_refresh.pop(refresh_token, None)
            if issued is None:
                return 400, {"error": "invalid_grant", "error_description": "unknown refresh token"}
            now = time.time()
            self.refreshes.append({"at": now, "age": now - issued, "token": refresh_token})
            if not self.rotate:
                self.live_refresh[refresh_token] = issued
                access = f"at_{secrets.token_hex(12)}"
                self.access[access] = now + self.lifetime
                return 200, {"access_token": access, "expires_in": self.lifetime, "token_type": "Bearer"}
            self.used_refresh.add(refresh_token)
            body = self._issue_locked()
            body["token_type"] = "Bearer"
            return 200, body

    def valid(self, access_token: str) -> bool:
        with self.lock:
            expiry = self.access.get(access_token)
            return expiry is not None and expiry > time.time()


def stored_token_left(rt: Runtime, connection_id: str) -> float | None:
    """Seconds the connection's stored access token has left now, by its stored expiry.

    A token endpoint reads this as a refresh arrives. A refresh is due when the stored token is
    within the refresh margin of expiry, so a refresh that finds more left refreshed a token that
    was not due (a second refresh of one expiry would be one). Unlike the token's age at the
    partner, this needs no allowance for the refresher's own latency: the refresher decided
    before its call arrived, the processes share this machine's clock, and its lease keeps the
    stored token unchanged until its call returns.
    """
    with rt.db.read() as session:
        grant = session.get(OAuthGrant, connection_id)
        if grant is None or grant.expires_at is None:
            return None
        return grant.expires_at.timestamp() - time.time()


#: Float and clock-reading slack for comparing :func:`stored_token_left` with the margin.
DUE_SLACK = 0.01


class FakePartner:
    """An ``httpx.MockTransport`` handler: ``POST /oauth/token``, ``GET /items``, ``POST /ping``."""

    def __init__(self, issuer: TokenIssuer | None = None) -> None:
        self.issuer = issuer or TokenIssuer()
        self.api_calls: list[str | None] = []
        #: Make the API answer 401 to this many calls, whatever the token.
        self.reject_next = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            form = parse_qs(request.content.decode())
            assert form["grant_type"] == ["refresh_token"]
            status, body = self.issuer.refresh(form["refresh_token"][0])
            return httpx.Response(status, json=body)
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        self.api_calls.append(token)
        if self.reject_next > 0:
            self.reject_next -= 1
            return httpx.Response(401, json={"error": "invalid_token"})
        if token is None or not self.issuer.valid(token):
            return httpx.Response(401, json={"error": "invalid_token"})
        if request.url.path.endswith("/items"):
            return httpx.Response(200, json={"items": [{"id": "i1", "name": "one"}]})
        return httpx.Response(200, json={"ok": True})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


BASE = "https://partner.example.com"
CONFIG = {"api_base_url": f"{BASE}/api", "oauth_base_url": BASE}


@dataclass(frozen=True)
class Authorized:
    occasion_id: str
    connection_id: str
    owner: factories.User


def authorized_connection(
    rt: Runtime,
    issuer: TokenIssuer,
    *,
    config: Mapping[str, Any] = CONFIG,
    expires_in: float | None = None,
    client: bool = True,
) -> Authorized:
    """An enabled ``oauth_partner`` connection whose grant holds a pair ``issuer`` issued."""
    owner = factories.user(rt)
    occasion_id = factories.occasion(rt, owner)
    made = create_connection(
        rt, owner.caller, occasion_id, ConnectionCreate("oauth_partner", config=dict(config), secrets={})
    )
    cid = made.connection.id
    pair = issuer.issue()
    lifetime = issuer.lifetime if expires_in is None else expires_in
    with rt.db.write() as session:
        if client:
            oauth.set_client(session, rt.keyring, "oauth_partner", CLIENT_ID, CLIENT_SECRET, actor="test")
        oauth.store_grant(
            session,
            rt.keyring,
            cid,
            oauth.TokenSet(
                pair["access_token"], pair["refresh_token"], utcnow() + timedelta(seconds=lifetime)
            ),
            actor=owner.id,
        )
        session.execute(
            update(Connection)
            .where(Connection.id == cid)
            .values(state=ConnectionState.ENABLED.value, next_sync_at=utcnow())
        )
    return Authorized(occasion_id, cid, owner)
