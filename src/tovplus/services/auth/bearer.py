"""Authenticating a request end to end: resolve the bearer token, record the (coalesced) use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from tovplus.db.models import User, UserToken
from tovplus.db.states import ConnectionState
from tovplus.db.types import utcnow
from tovplus.errors import Forbidden, Unauthenticated
from tovplus.integrations.contract import Scope, ScopeType
from tovplus.runtime import Runtime
from tovplus.services.auth.callers import Caller, IntegrationCaller, UserCaller
from tovplus.services.auth.tokens import (
    USER_TOKEN_PREFIX,
    active_action_keys,
    needs_touch,
    resolve_integration_key,
    sha256_hex,
    touch_integration_key,
    touch_user_token,
)


@dataclass(frozen=True, slots=True)
class Authentication:
    """The caller a token resolved to, and which last-used time is due to be written."""

    caller: Caller
    #: Set when a last-used time should be written after the request (coalesced).
    touch_key_id: str | None = None
    touch_token_hash: str | None = None


#: Every user request runs it: built once, and columns rather than ORM objects (building the
#: statement and loading two entities was 13 % of the planner overview's time, py-spy).
_USER_TOKEN = (
    select(User.id, User.email, User.role, UserToken.revoked_at, UserToken.expires_at, UserToken.last_used_at)
    .join(User, User.id == UserToken.user_id)
    .where(UserToken.token_hash == bindparam("token_hash"))
)


def authenticate(session: Session, token: str | None, now: datetime | None = None) -> Authentication:
    """Resolve a bearer token to a caller or raise :class:`Unauthenticated`."""
    now = now or utcnow()
    if not token:
        raise Unauthenticated("Send a bearer token in the Authorization header.")
    if token.startswith(USER_TOKEN_PREFIX) and len(token) <= 200:
        token_hash = sha256_hex(token)
        row = session.execute(_USER_TOKEN, {"token_hash": token_hash}).first()
        if row is not None and row.revoked_at is None and (row.expires_at is None or row.expires_at > now):
            return Authentication(
                UserCaller(row.id, row.email, row.role),
                touch_token_hash=token_hash if needs_touch(row.last_used_at, now) else None,
            )
    resolved = resolve_integration_key(session, token)
    if resolved is not None:
        principal = resolved.principal
        caller = IntegrationCaller(
            principal_id=principal.id,
            subject_id=principal.subject_id,
            connection_id=principal.connection_id,
            key_id=resolved.key.key_id,
            scope=Scope(
                ScopeType(principal.scope_type), principal.scope_occasion_id, principal.scope_event_id
            ),
            action_keys=active_action_keys(session, principal.subject_id),
        )
        if resolved.connection_state != ConnectionState.ENABLED:
            raise Forbidden("This integration's connection is not enabled.")
        return Authentication(
            caller, touch_key_id=resolved.key.key_id if needs_touch(resolved.key.last_used_at, now) else None
        )
    raise Unauthenticated("The bearer token is not valid (it may have been revoked or rotated).")


def record_use(session: Session, auth: Authentication, now: datetime | None = None) -> None:
    """Write the coalesced last-used time of the caller's key or token."""
    now = now or utcnow()
    if auth.touch_key_id:
        touch_integration_key(session, auth.touch_key_id, now)
    if auth.touch_token_hash:
        touch_user_token(session, auth.touch_token_hash, now)


def authenticate_bearer(rt: Runtime, token: str | None) -> Caller:
    """Resolve a bearer token to a caller, or raise ``Unauthenticated``/``Forbidden``."""
    with rt.db.read() as session:
        return authenticate_in(rt, session, token)


def authenticate_in(rt: Runtime, session: Session, token: str | None) -> Caller:
    """:func:`authenticate_bearer` in a read session the caller goes on using (one per request);
    a due last-used time is written in a write session of its own."""
    auth = authenticate(session, token)
    if auth.touch_key_id or auth.touch_token_hash:
        with rt.db.write() as write:
            record_use(write, auth)
    return auth.caller
