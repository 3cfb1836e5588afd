"""One refresh call to a partner's token endpoint, with Authlib, over the partner HTTP client.

No database here: :mod:`.refresh` calls :func:`refresh_tokens` while it holds the grant's lease,
outside any transaction. What the partner answered becomes a :class:`~.tokens.TokenSet`, or one of
three failures: :class:`GrantRefused` (the grant is gone: the planner must reconnect),
``CredentialsRejected`` (the operator's client is refused) or ``PartnerUnavailable`` (retry later).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from tovplus.errors import CredentialsRejected, PartnerUnavailable
from tovplus.integrations.redaction import scrubber
from tovplus.services.oauth.authlib_client import OAuth2Client, OAuthError
from tovplus.services.oauth.clients import ClientCredentials
from tovplus.services.oauth.tokens import TokenSet

#: Token endpoint errors that mean our operator's client, not the planner's grant, is refused.
_CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})


class GrantRefused(Exception):
    """The token endpoint refused the refresh token (``invalid_grant`` or a 400/401 like it)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class _BorrowedOAuth2Client(OAuth2Client):  # type: ignore[misc]  # authlib ships no types
    """Authlib's client over the partner client's pooled transport; closing it leaves the pool open."""

    def close(self) -> None:
        return None


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def refresh_tokens(
    base: httpx.Client,
    token_url: str,
    client: ClientCredentials,
    refresh_token: str,
    *,
    timeout: float,
    partner: str,
    now: datetime,
) -> TokenSet:
    """Exchange ``refresh_token`` at ``token_url``; ``expires_at`` counts from ``now`` (the call's start)."""
    seen: dict[str, int] = {}

    def unavailable_on_overload(response: httpx.Response) -> httpx.Response:
        seen["status"] = response.status_code
        if response.status_code == 429 or response.status_code >= 500:
            raise PartnerUnavailable(
                f"{partner}'s token endpoint answered {response.status_code}; the refresh is retried.",
                retry_after=_retry_after(response),
            )
        return response

    oauth = _BorrowedOAuth2Client(
        client_id=client.client_id,
        client_secret=client.client_secret,
        transport=base._transport,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        headers=base.headers,
        follow_redirects=False,
        trust_env=False,
    )
    oauth.register_compliance_hook("refresh_token_response", unavailable_on_overload)
    try:
        answer: dict[str, Any] = dict(oauth.refresh_token(token_url, refresh_token=refresh_token))
    except OAuthError as exc:
        if exc.error in _CLIENT_ERRORS:
            raise CredentialsRejected(
                f"{partner} refused TOV Plus's OAuth client ({exc.error}): an operator must set the "
                "client again with `tovplus oauth set-client`."
            ) from None
        if exc.error == "invalid_grant" or seen.get("status") in (400, 401):
            raise GrantRefused(str(exc.error)) from None
        raise PartnerUnavailable(f"{partner}'s token endpoint refused the refresh ({exc.error}).") from None
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        if status in (400, 401):
            raise GrantRefused(f"http_{status}") from None
        raise PartnerUnavailable(f"{partner}'s token endpoint answered {status}.") from None
    except httpx.TransportError as exc:
        raise PartnerUnavailable(
            f"{partner}'s token endpoint could not be reached ({type(exc).__name__})."
        ) from None
    except ValueError:
        raise PartnerUnavailable(f"{partner}'s token endpoint did not answer with a token.") from None
    return _token_set(answer, refresh_token, partner, now)


def _token_set(answer: dict[str, Any], used: str, partner: str, now: datetime) -> TokenSet:
    """The answer as a :class:`TokenSet` (every value remembered by the scrubber first)."""
    access = answer.get("access_token")
    if not isinstance(access, str) or not access:
        raise PartnerUnavailable(f"{partner}'s token endpoint answered without an access token.")
    scrubber.remember(access)
    rotated = answer.get("refresh_token")
    fresh = rotated if isinstance(rotated, str) and rotated and rotated != used else None
    if fresh is not None:
        scrubber.remember(fresh)
    expires_in = answer.get("expires_in")
    try:
        expires_at = now + timedelta(seconds=float(expires_in)) if expires_in is not None else None
    except (TypeError, ValueError):
        expires_at = None
    scope = answer.get("scope")
    scopes = tuple(scope.split()) if isinstance(scope, str) else ()
    return TokenSet(access, fresh, expires_at, scopes)
