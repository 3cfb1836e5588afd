"""How an adapter authenticates to its partner: typed secrets, or OAuth2 that the framework runs.

An adapter declares ``auth``:

* :class:`ApiKeyAuth` (the default): the planner types the adapter's ``secret_fields`` into the
  form; the adapter gets them in ``ctx.secrets``.
* :class:`OAuth2Auth`: the planner grants access at the partner; the framework owns the whole
  flow (authorization URL with PKCE, code exchange, refresh, reconnect, all in
  ``services/oauth``). The adapter never sees a refresh token or the client secret: it gets a
  valid access token in ``ctx.access_token`` and an ``httpx`` client (``ctx.http``) that sends
  it as a bearer token and, on a 401 from the partner, refreshes once and retries.

The framework side of the token is a :class:`TokenSource`; :class:`BearerAuth` is the ``httpx``
auth that uses one. Both are pure (no database): ``services/oauth`` implements the source with
a fenced lease in our database, ``tovplus.testing`` with memory.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import httpx

from tovplus.errors import CredentialsRejected


class AuthType(StrEnum):
    """The two ways an adapter authenticates."""

    API_KEY = "api_key"
    OAUTH2 = "oauth2"


class AuthorizationStatus(StrEnum):
    """Where an OAuth2 connection's grant stands (the contract's ``authorization.status``)."""

    PENDING = "pending"
    AUTHORIZED = "authorized"
    RECONNECT_REQUIRED = "reconnect_required"


@dataclass(frozen=True, slots=True)
class ApiKeyAuth:
    """Secrets typed into the form (the adapter's ``secret_fields``)."""

    type: AuthType = AuthType.API_KEY

    def describe(self) -> dict[str, Any]:
        """The catalog's ``auth`` object."""
        return {"type": self.type.value}


_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class OAuth2Auth:
    """OAuth2 authorization code grant, run by the framework.

    ``authorize_url`` and ``token_url`` may name config fields in braces
    (``"{oauth_base_url}/oauth/authorize"``), filled from the connection's config; a trailing
    slash of the value is dropped. ``scopes`` are asked for and shown in the catalog; ``pkce``
    sends an S256 code challenge.
    """

    authorize_url: str
    token_url: str
    scopes: tuple[str, ...] = ()
    pkce: bool = True
    type: AuthType = AuthType.OAUTH2

    def describe(self) -> dict[str, Any]:
        """The catalog's ``auth`` object."""
        return {"type": self.type.value, "scopes": list(self.scopes), "pkce": self.pkce}

    def config_keys(self) -> frozenset[str]:
        """The config fields the two URLs are built from."""
        return frozenset(_PLACEHOLDER.findall(self.authorize_url + " " + self.token_url))

    def urls(self, config: Mapping[str, Any]) -> tuple[str, str]:
        """``(authorize_url, token_url)`` for a connection's config; ``KeyError`` for a missing field."""

        def fill(template: str) -> str:
            return _PLACEHOLDER.sub(lambda m: str(config[m.group(1)]).rstrip("/"), template)

        return fill(self.authorize_url), fill(self.token_url)


#: What an adapter declares as ``auth``.
AuthSpec = ApiKeyAuth | OAuth2Auth


def auth_problems(auth: Any, config_keys: frozenset[str], secret_field_count: int) -> list[str]:
    """What is wrong with an adapter's ``auth`` declaration (the registry refuses it then)."""
    if not isinstance(auth, ApiKeyAuth | OAuth2Auth):
        return ["auth must be ApiKeyAuth() or OAuth2Auth(...) (tovplus.integrations.auth)"]
    if isinstance(auth, ApiKeyAuth):
        return []
    problems = [
        f"auth names config field {{{key}}}, which config_fields lack"
        for key in sorted(auth.config_keys() - config_keys)
    ]
    if secret_field_count:
        problems.append("an oauth2 adapter declares no secret_fields: the planner types no secret")
    if not all(isinstance(s, str) and s and " " not in s for s in auth.scopes):
        problems.append("auth scopes must be non-empty strings without spaces")
    return problems


class TokenSource(Protocol):
    """The framework's side of a connection's access token (never its refresh token)."""

    def access_token(self) -> str:
        """A valid access token, refreshed first when it is about to expire.

        Raises ``CredentialsRejected`` when the grant is gone (the planner must reconnect).
        """
        ...

    def refresh_after_rejection(self, rejected: str) -> str:
        """A new access token after the partner refused ``rejected`` with 401.

        Refreshes unless another process already replaced ``rejected``; raises
        ``CredentialsRejected`` when the grant is gone.
        """
        ...


def same_token(a: str | None, b: str | None) -> bool:
    """Whether two tokens are the same, compared in constant time (``None`` equals only ``None``)."""
    if a is None or b is None:
        return a is b
    return hmac.compare_digest(a.encode(), b.encode())


class BearerAuth(httpx.Auth):
    """Sends the source's access token; after a 401, refreshes once and retries once."""

    def __init__(self, source: TokenSource) -> None:
        self._source = source

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._source.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        fresh = self._source.refresh_after_rejection(token)
        if same_token(fresh, token):  # nothing new: the partner refuses the grant
            raise CredentialsRejected("The partner refused the access token, and no newer one exists.")
        request.headers["Authorization"] = f"Bearer {fresh}"
        yield request
