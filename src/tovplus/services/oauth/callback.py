"""Finishing an authorization: the partner sent the planner's browser back with a code (or an error).

The state must be unused, unexpired, bound to the browser's signed-in user, and for a connection
that still fits (not revoked, still ``oauth2``, still the user's to manage); otherwise 400
``invalid_state`` and nothing changes. The code is exchanged (Authlib, PKCE verifier, client id and
secret) over the partner HTTP client outside any transaction; then one transaction marks the state
used (conditionally, so a replay finds it used), stores the grant and records the activity, and runs
the caller's ``on_authorized`` (the connections domain: validation, health, schedule, first sync).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.orm import Session

from tovplus.db.models import Connection, OAuthGrant, OAuthState
from tovplus.db.states import ConnectionState
from tovplus.db.types import utcnow
from tovplus.errors import InvalidState, MalformedRequest, TovPlusError
from tovplus.integrations.auth import AuthorizationStatus
from tovplus.integrations.contract import Adapter
from tovplus.integrations.redaction import scrubber
from tovplus.runtime import Runtime
from tovplus.runtime.partner_http import partner_http_client
from tovplus.services import activity
from tovplus.services.auth import MANAGE, UserCaller, authorize
from tovplus.services.oauth.authlib_client import OAuth2Client, OAuthError
from tovplus.services.oauth.clients import ClientCredentials, client_credentials
from tovplus.services.oauth.states import oauth2_of, open_verifier, partner_urls, state_hash
from tovplus.services.oauth.tokens import TokenSet, grant_status, store_grant

_STATE_MAX = 200
_NO_STATE = "This sign-in link is not valid (missing, used or expired). Start again with Connect."
_OTHER_BROWSER = (
    "This sign-in was started by another TOV Plus user, or this browser is not signed in as them. "
    "Sign in to TOV Plus in this browser as the person who pressed Connect, then start again."
)


class CallbackResult(StrEnum):
    """How a callback ended (the page's notice names it)."""

    AUTHORIZED = "authorized"
    DENIED = "denied"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CallbackOutcome:
    """Where to send the browser, and what to tell the planner."""

    result: CallbackResult
    occasion_id: str
    connection_id: str
    return_to: str
    message: str


#: What the connections domain does in the authorizing transaction; returns sync run ids to dispatch.
#: Called with the session, the connection (locked), the grant's status before and the actor.
OnAuthorized = Callable[[Session, Connection, AuthorizationStatus, str], Sequence[str]]


@dataclass(frozen=True, slots=True)
class _Attempt:
    """A checked state, with what the exchange needs (read in one short transaction)."""

    hashed: str
    connection_id: str
    occasion_id: str
    integration_key: str
    adapter: Adapter
    redirect_uri: str
    return_to: str
    verifier: str | None
    client: ClientCredentials
    token_url: str


def complete_authorization(
    rt: Runtime,
    *,
    code: str | None,
    state: str | None,
    error: str | None,
    session_user: UserCaller | None,
    on_authorized: OnAuthorized | None = None,
) -> CallbackOutcome:
    """Finish the authorization ``state`` started (see the module docstring); 400 ``invalid_state``
    (and nothing changed) for a state that does not fit this browser's user."""
    attempt = _check(rt, state, session_user)
    assert session_user is not None
    if error is not None:
        return _refused(rt, attempt, session_user, error)
    if not code or len(code) > 2000:
        raise MalformedRequest("The partner sent no authorization code.", code="missing_code")
    try:
        tokens = _exchange(rt, attempt, code)
    except TovPlusError as exc:
        return _failed(rt, attempt, session_user, exc.message)
    run_ids = _store(rt, attempt, session_user, tokens, on_authorized)
    for run_id in run_ids:
        rt.dispatcher.sync_run(run_id)
    name = attempt.adapter.name
    return _outcome(attempt, CallbackResult.AUTHORIZED, f"Connected: {name} granted access.")


def _outcome(attempt: _Attempt, result: CallbackResult, message: str) -> CallbackOutcome:
    return CallbackOutcome(result, attempt.occasion_id, attempt.connection_id, attempt.return_to, message)


def _default_return(occasion_id: str, connection_id: str) -> str:
    return f"/occasions/{occasion_id}/integrations/connections/{connection_id}"


def _check(rt: Runtime, state: str | None, user: UserCaller | None) -> _Attempt:
    if not state or len(state) > _STATE_MAX:
        raise InvalidState(_NO_STATE)
    hashed = state_hash(state)
    with rt.db.read() as session:
        row = session.get(OAuthState, hashed)
        if row is None or row.used_at is not None or row.expires_at <= utcnow():
            raise InvalidState(_NO_STATE)
        if user is None or row.user_id != user.user_id:
            raise InvalidState(_OTHER_BROWSER)
        connection = session.get(Connection, row.connection_id)
        adapter = rt.registry.find(connection.integration_key) if connection is not None else None
        if connection is None or connection.state == ConnectionState.REVOKED or adapter is None:
            raise InvalidState("This connection cannot be authorized any more.")
        try:
            authorize(session, user, MANAGE, connection.occasion_id)
            oauth2_of(adapter)
            _authorize_url, token_url = partner_urls(
                adapter, dict(connection.config), allow_private=rt.settings.allow_private_urls
            )
        except TovPlusError:
            raise InvalidState("This connection cannot be authorized any more.") from None
        client = client_credentials(session, rt.keyring, adapter.integration_key)
        if client is None:
            raise InvalidState("The OAuth client of this integration is not configured any more.")
        return _Attempt(
            hashed=hashed,
            connection_id=connection.id,
            occasion_id=connection.occasion_id,
            integration_key=connection.integration_key,
            adapter=adapter,
            redirect_uri=row.redirect_uri,
            return_to=row.return_to or _default_return(connection.occasion_id, connection.id),
            verifier=open_verifier(row, rt.keyring),
            client=client,
            token_url=token_url,
        )


def _exchange(rt: Runtime, attempt: _Attempt, code: str) -> TokenSet:
    """The code for tokens at the partner's token endpoint (no transaction is open)."""
    auth = oauth2_of(attempt.adapter)
    base = partner_http_client(rt.settings)
    # borrows the partner client's pool (SSRF-safe transport, timeouts); never closed here
    exchanger = OAuth2Client(
        client_id=attempt.client.client_id,
        client_secret=attempt.client.client_secret,
        redirect_uri=attempt.redirect_uri,
        code_challenge_method="S256" if auth.pkce else None,
        transport=base._transport,
        timeout=base.timeout,
        headers=dict(base.headers),
        follow_redirects=False,
        trust_env=False,
    )
    extra: dict[str, Any] = {"code_verifier": attempt.verifier} if attempt.verifier else {}
    partner = attempt.adapter.name
    try:
        answer = exchanger.fetch_token(
            attempt.token_url,
            grant_type="authorization_code",
            code=code,
            redirect_uri=attempt.redirect_uri,
            **extra,
        )
    except OAuthError as exc:
        raise TovPlusError(
            f"{partner} refused the sign-in ({_short(exc.error)}). Try Connect again."
        ) from None
    except (httpx.HTTPError, ValueError) as exc:
        del exc
        raise TovPlusError(
            f"Could not complete the sign-in with {partner}: its token endpoint did not answer."
        ) from None
    return _token_set(answer, auth.scopes, partner)


def _short(text: object) -> str:
    return "".join(c for c in str(text) if c.isalnum() or c in "_-.")[:60] or "error"


def _token_set(answer: Any, default_scopes: Sequence[str], partner: str) -> TokenSet:
    access = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(access, str) or not access:
        raise TovPlusError(f"{partner} answered the sign-in without an access token.")
    scrubber.remember(access)
    refresh = answer.get("refresh_token")
    if isinstance(refresh, str) and refresh:
        scrubber.remember(refresh)
    else:
        refresh = None
    expires = answer.get("expires_at")
    expires_at = datetime.fromtimestamp(expires, UTC) if isinstance(expires, int | float) else None
    scope = answer.get("scope")
    scopes = tuple(scope.split()) if isinstance(scope, str) and scope.strip() else tuple(default_scopes)
    return TokenSet(access, refresh, expires_at, scopes)


def _use_state(session: Session, hashed: str) -> None:
    """Mark the state used, if nobody did meanwhile (a concurrent replay); else ``invalid_state``."""
    result = session.execute(
        update(OAuthState)
        .where(OAuthState.state_hash == hashed, OAuthState.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidState(_NO_STATE)


def _common(attempt: _Attempt, user: UserCaller) -> dict[str, Any]:
    return {
        "occasion_id": attempt.occasion_id,
        "connection_id": attempt.connection_id,
        "integration_key": attempt.integration_key,
        "actor": user.subject_id,
    }


def _refused(rt: Runtime, attempt: _Attempt, user: UserCaller, error: str) -> CallbackOutcome:
    """The partner sent ``error=`` (``access_denied``: the planner pressed Deny): recorded, nothing else."""
    code = _short(error)
    name = attempt.adapter.name
    with rt.db.write() as session:
        _use_state(session, attempt.hashed)
        denied = code == "access_denied"
        activity.record(
            session,
            kind="connection.authorization_denied" if denied else "connection.authorization_failed",
            summary=f"Access was not granted at {name}"
            if denied
            else f"{name} did not grant access ({code})",
            details={"error": code},
            **_common(attempt, user),
        )
    if denied:
        return _outcome(attempt, CallbackResult.DENIED, f"Access was not granted at {name}; nothing changed.")
    return _outcome(attempt, CallbackResult.FAILED, f"{name} did not grant access ({code}); nothing changed.")


def _failed(rt: Runtime, attempt: _Attempt, user: UserCaller, reason: str) -> CallbackOutcome:
    """The code exchange failed: the state is spent, the failure recorded, the grant left as it was."""
    with rt.db.write() as session:
        _use_state(session, attempt.hashed)
        activity.record(
            session,
            kind="connection.authorization_failed",
            summary=reason,
            details={},
            **_common(attempt, user),
        )
    return _outcome(attempt, CallbackResult.FAILED, reason)


def _store(
    rt: Runtime, attempt: _Attempt, user: UserCaller, tokens: TokenSet, on_authorized: OnAuthorized | None
) -> Sequence[str]:
    """One transaction: the state used, the grant stored, ``connection.authorized``, the follow-ups."""
    with rt.db.write() as session:
        _use_state(session, attempt.hashed)
        connection = session.get(Connection, attempt.connection_id, with_for_update=True)
        if connection is None or connection.state == ConnectionState.REVOKED:
            raise InvalidState("This connection cannot be authorized any more.")
        previous = grant_status(session.get(OAuthGrant, connection.id))
        grant = store_grant(session, rt.keyring, connection.id, tokens, actor=user.subject_id)
        reconnect = previous != AuthorizationStatus.PENDING
        activity.record(
            session,
            kind="connection.authorized",
            summary=f"{attempt.adapter.name} {'reconnected' if reconnect else 'connected'}: access granted",
            details={"scopes": list(grant.scopes), "reconnect": reconnect, "previous": previous.value},
            **_common(attempt, user),
        )
        session.flush()
        return list(on_authorized(session, connection, previous, user.subject_id)) if on_authorized else []
