"""A fake OAuth2 authorization server and a token store over it, for testing OAuth2 adapters.

The server issues short-lived access tokens and refresh tokens that rotate on every use (a
refresh token presented twice is refused with ``invalid_grant``, as careful partners do), and
protects a fake API you mount on it: a request reaches the API only with a live access token.

    server = FakeAuthorizationServer({"GET /v1/items": {"items": []}}, expires_in=300)
    result = run_sync(MyOAuthAdapter, config=CONFIG, partner=server)    # token sent for you
    server.advance(seconds=301)                                         # the token expired
    run_sync(MyOAuthAdapter, config=CONFIG, partner=server)             # refreshed first, once
    assert (server.refreshes, server.reused) == (1, [])

``run_sync``, ``run_check`` and ``run_action`` accept a server as ``partner`` (and wrap a plain
:class:`FakePartner` in one for an OAuth2 adapter). To build the contexts yourself, use
:func:`oauth_http` (the ``ctx.http`` the framework gives: ``with_auth(client, BearerAuth(source))``)
or :func:`oauth_context`. Nothing opens a socket: everything is an ``httpx.MockTransport``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode

import httpx

from tovplus.errors import CredentialsRejected
from tovplus.integrations.auth import BearerAuth, TokenSource, same_token
from tovplus.integrations.http import with_auth
from tovplus.testing.fake_partner import Answer, FakePartner

#: Where :class:`MemoryTokenSource` asks for tokens unless told otherwise.
TOKEN_URL = "https://auth.partner.example/oauth/token"  # noqa: S105 - a URL, not a secret


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """One token response of the fake server (what the framework would seal and store)."""

    access_token: str
    refresh_token: str
    expires_at: datetime
    scopes: tuple[str, ...] = ()


def _error(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, json={"error": code})


class FakeAuthorizationServer:
    """An OAuth2 authorization server (authorization page, token endpoint) and the API it protects.

    ``api`` is the protected API (a :class:`FakePartner` or its routes). ``expires_in`` is the
    access tokens' lifetime in seconds; the server's clock starts now and moves only with
    :meth:`advance`. ``refreshes`` counts successful refreshes, ``reused`` lists refresh tokens
    presented after they were rotated, ``issued`` every token response, ``requests`` every request.

    Adapter tests start from :meth:`grant` (what the planner's Allow leaves behind). To drive a
    whole connect flow, ``GET <authorize_path>?response_type=code&redirect_uri=...&state=...``
    answers ``302`` to the redirect URI with a single-use ``code`` (or ``error=access_denied``
    while ``allow`` is false), and the token endpoint exchanges it (``grant_type=authorization_code``,
    checking the redirect URI and the PKCE S256 verifier when a challenge was sent).
    """

    def __init__(
        self,
        api: FakePartner | Mapping[str, Answer] | None = None,
        *,
        expires_in: int = 300,
        scopes: tuple[str, ...] = (),
        token_path: str = "/oauth/token",  # noqa: S107 - a path, not a secret
        authorize_path: str = "/oauth/authorize",
        token_prefix: str = "fake",  # noqa: S107 - a prefix, not a secret
    ) -> None:
        self.api = api if isinstance(api, FakePartner) else FakePartner(api)
        self.expires_in = expires_in
        self.scopes = scopes
        self.token_path = token_path
        self.authorize_path = authorize_path
        self.token_prefix = token_prefix
        #: Whether the planner presses Allow (false: Deny) on the authorization page.
        self.allow = True
        self._codes: dict[str, tuple[str, str | None, tuple[str, ...]]] = {}
        self.refreshes = 0
        self.reused: list[str] = []
        self.issued: list[IssuedTokens] = []
        self.requests: list[httpx.Request] = []
        self.rejected: list[httpx.Request] = []
        self._offset = timedelta(0)
        self._live_access: dict[str, datetime] = {}
        self._live_refresh: set[str] = set()
        self._spent_refresh: set[str] = set()
        self._revoked = False
        self._lock = threading.Lock()
        self._source: MemoryTokenSource | None = None

    # --- the clock and the switches ---------------------------------------------------------

    def now(self) -> datetime:
        """The server's time (real time plus what :meth:`advance` added)."""
        return datetime.now(UTC) + self._offset

    def advance(self, *, seconds: float = 0, minutes: float = 0) -> None:
        """Move the server's clock forward (past ``expires_in`` and every access token is dead)."""
        self._offset += timedelta(seconds=seconds, minutes=minutes)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is refused from now on (the API answers 401)."""
        with self._lock:
            self._live_access.clear()

    def revoke(self) -> None:
        """The planner revoked access at the partner: every refresh is ``invalid_grant`` from now on."""
        with self._lock:
            self._revoked = True
            self._live_access.clear()
            self._live_refresh.clear()

    # --- issuing -----------------------------------------------------------------------------

    def grant(self, scopes: tuple[str, ...] | None = None) -> IssuedTokens:
        """Tokens for a new grant, as if the planner had pressed Allow (and the code was exchanged)."""
        with self._lock:
            self._revoked = False
            return self._issue(self.scopes if scopes is None else scopes)

    def _issue(self, scopes: tuple[str, ...]) -> IssuedTokens:
        n = len(self.issued) + 1
        tokens = IssuedTokens(
            access_token=f"{self.token_prefix}-access-{n}-{secrets.token_hex(8)}",
            refresh_token=f"{self.token_prefix}-refresh-{n}-{secrets.token_hex(8)}",
            expires_at=self.now() + timedelta(seconds=self.expires_in),
            scopes=scopes,
        )
        self._live_access[tokens.access_token] = tokens.expires_at
        self._live_refresh.add(tokens.refresh_token)
        self.issued.append(tokens)
        return tokens

    def token_values(self) -> list[str]:
        """Every access and refresh token issued so far (what must never leak)."""
        return [v for t in self.issued for v in (t.access_token, t.refresh_token)]

    def is_live(self, access_token: str) -> bool:
        """Whether the API would accept ``access_token`` now."""
        expires = self._live_access.get(access_token)
        return expires is not None and expires > self.now()

    # --- the transport -----------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request: the token endpoint, or the protected API (the MockTransport handler)."""
        request.read()
        self.requests.append(request)
        if request.url.path.endswith(self.token_path):
            return self._token_endpoint(request)
        if request.url.path.endswith(self.authorize_path) and request.method == "GET":
            return self._authorize(request)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self.is_live(token.strip()):
            self.rejected.append(request)
            return httpx.Response(
                401,
                json={"error": "invalid_token"},
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return self.api.handle(request)

    def _authorize(self, request: httpx.Request) -> httpx.Response:
        """The authorization page, answered at once as the planner would (Allow, or Deny)."""
        params = request.url.params
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri or params.get("response_type") != "code":
            return _error(400, "invalid_request")
        answer: dict[str, str] = {"error": "access_denied"}
        if self.allow:
            code = secrets.token_urlsafe(16)
            scopes = tuple(params.get("scope", "").split()) or self.scopes
            with self._lock:
                self._codes[code] = (redirect_uri, params.get("code_challenge"), scopes)
            answer = {"code": code}
        if "state" in params:
            answer["state"] = params["state"]
        separator = "&" if "?" in redirect_uri else "?"
        return httpx.Response(302, headers={"Location": f"{redirect_uri}{separator}{urlencode(answer)}"})

    def _token_endpoint(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return _error(405, "invalid_request")
        form = {k: v[0] for k, v in parse_qs(request.content.decode("utf-8", "replace")).items()}
        grant_type = form.get("grant_type")
        if grant_type == "refresh_token":
            tokens = self._refresh_grant(form.get("refresh_token", ""))
        elif grant_type == "authorization_code":
            tokens = self._code_grant(form)
        else:
            return _error(400, "unsupported_grant_type")
        if tokens is None:
            return _error(400, "invalid_grant")
        body = {
            "access_token": tokens.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": tokens.refresh_token,
            "scope": " ".join(tokens.scopes),
        }
        return httpx.Response(200, json=body, headers={"Cache-Control": "no-store"})

    def _refresh_grant(self, presented: str) -> IssuedTokens | None:
        """New tokens for a live refresh token, which is spent; ``None`` for a spent or dead one."""
        with self._lock:
            if presented in self._spent_refresh:
                self.reused.append(presented)
                return None
            if self._revoked or presented not in self._live_refresh:
                return None
            self._live_refresh.discard(presented)
            self._spent_refresh.add(presented)
            self.refreshes += 1
            old = next(t for t in self.issued if same_token(t.refresh_token, presented))
            return self._issue(old.scopes)

    def _code_grant(self, form: Mapping[str, str]) -> IssuedTokens | None:
        """Tokens for a code (single-use), its redirect URI and its PKCE verifier; else ``None``."""
        with self._lock:
            found = self._codes.pop(form.get("code", ""), None)
            if found is None:
                return None
            redirect_uri, challenge, scopes = found
            if form.get("redirect_uri") != redirect_uri:
                return None
            if challenge is not None:
                digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
                if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != challenge:
                    return None
            self._revoked = False
            return self._issue(scopes)

    def transport(self) -> httpx.MockTransport:
        """An ``httpx.MockTransport`` answering through :meth:`handle`."""
        return httpx.MockTransport(self.handle)

    def client(self, *, timeout: float = 5.0) -> httpx.Client:
        """A plain client (no token) whose every request reaches this server."""
        return httpx.Client(transport=self.transport(), timeout=timeout, follow_redirects=False)

    def token_source(self) -> MemoryTokenSource:
        """The grant the helpers use for this server (made on first use, then kept, like a stored grant)."""
        if self._source is None:
            self._source = MemoryTokenSource(self)
        return self._source


class MemoryTokenSource:
    """A :class:`~tovplus.integrations.auth.TokenSource` over a :class:`FakeAuthorizationServer`.

    It does what the framework does with a stored grant, in memory: hands out the access token,
    refreshes ``refresh_ahead`` seconds before expiry and after a 401 (unless another caller
    already did), keeps the rotated refresh token before using the new access token, and raises
    ``CredentialsRejected`` once the server answers ``invalid_grant``.

        source = MemoryTokenSource(server)
        http = with_auth(server.client(), BearerAuth(source))
    """

    def __init__(
        self,
        server: FakeAuthorizationServer,
        tokens: IssuedTokens | None = None,
        *,
        refresh_ahead: float = 30.0,
        token_url: str = TOKEN_URL,
    ) -> None:
        self.server = server
        self.tokens = tokens or server.grant()
        self.refresh_ahead = timedelta(seconds=refresh_ahead)
        self.token_url = token_url
        self.refreshes = 0
        self.reconnect_required = False
        self._lock = threading.Lock()

    def access_token(self) -> str:
        """A valid access token, refreshed first when it expires within ``refresh_ahead``."""
        with self._lock:
            if self.tokens.expires_at - self.server.now() <= self.refresh_ahead:
                self._refresh()
            return self.tokens.access_token

    def refresh_after_rejection(self, rejected: str) -> str:
        """A new access token after ``rejected`` got a 401 (or the newer one another caller got)."""
        with self._lock:
            if same_token(self.tokens.access_token, rejected):
                self._refresh()
            return self.tokens.access_token

    def _refresh(self) -> None:
        if self.reconnect_required:
            raise CredentialsRejected("The partner no longer accepts this connection's grant: reconnect it.")
        form = {"grant_type": "refresh_token", "refresh_token": self.tokens.refresh_token}
        with self.server.client() as client:
            response = client.post(self.token_url, data=form)
        body = (
            response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        )
        if response.status_code != 200:
            if body.get("error") == "invalid_grant":
                self.reconnect_required = True
                raise CredentialsRejected(
                    "The partner no longer accepts this connection's grant: reconnect it."
                )
            raise CredentialsRejected(f"The partner's token endpoint answered HTTP {response.status_code}.")
        scopes = tuple(str(body.get("scope") or "").split())
        self.tokens = IssuedTokens(
            access_token=str(body["access_token"]),
            refresh_token=str(body.get("refresh_token") or self.tokens.refresh_token),
            expires_at=self.server.now() + timedelta(seconds=int(body.get("expires_in", 3600))),
            scopes=scopes or self.tokens.scopes,
        )
        self.refreshes += 1


def oauth_http(server: FakeAuthorizationServer, source: TokenSource | None = None) -> httpx.Client:
    """The ``ctx.http`` the framework gives an OAuth2 adapter: sends the token, refreshes once after a 401."""
    return with_auth(server.client(), BearerAuth(source or server.token_source()))


@contextmanager
def partner_http(
    partner: FakePartner | FakeAuthorizationServer, *, oauth: bool
) -> Iterator[tuple[httpx.Client, str | None]]:
    """``(ctx.http, ctx.access_token)`` for a run against ``partner``.

    An OAuth2 run (``oauth``) goes through a :class:`FakeAuthorizationServer` (``partner`` itself,
    or a new one protecting the given :class:`FakePartner`); an api-key run through the plain client.
    """
    if not oauth and isinstance(partner, FakePartner):
        with partner.client() as http:
            yield http, None
        return
    server = partner if isinstance(partner, FakeAuthorizationServer) else FakeAuthorizationServer(partner)
    source = server.token_source()
    base = server.client()
    try:
        yield with_auth(base, BearerAuth(source)), source.access_token()
    finally:
        base.close()


__all__ = [
    "TOKEN_URL",
    "FakeAuthorizationServer",
    "IssuedTokens",
    "MemoryTokenSource",
    "oauth_http",
    "partner_http",
]
