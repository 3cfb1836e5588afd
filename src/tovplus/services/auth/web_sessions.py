"""Passwords and browser sessions for the web pages.

* Passwords are hashed with argon2id at OWASP's recommended cost (19 MiB, 2 passes, 1 lane);
  a stored hash made with other parameters is upgraded at the next sign-in.
* A browser session is a random token kept in an HttpOnly cookie; only its SHA-256
  hash is stored, in ``user_tokens`` with ``purpose="session"`` and an expiry.
  Session tokens carry their own prefix (``tovs_``), so they are never accepted as
  API bearer tokens; signing out revokes the row at once.
* Sign-in answers the same way, after the same work, for an unknown email, a user
  without a password and a wrong password, so it does not reveal who has an account.
* Sign-in is throttled per client and per account (:mod:`.throttle`); the limits are
  re-exported here as ``ATTEMPTS_PER_CLIENT`` and ``ATTEMPTS_PER_ACCOUNT``.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import User, UserToken
from tovplus.db.types import utcnow
from tovplus.errors import FieldIssue, InvalidInput, Unauthenticated
from tovplus.runtime import Runtime
from tovplus.services.auth.callers import UserCaller
from tovplus.services.auth.throttle import ATTEMPTS_PER_ACCOUNT as ATTEMPTS_PER_ACCOUNT
from tovplus.services.auth.throttle import ATTEMPTS_PER_CLIENT as ATTEMPTS_PER_CLIENT
from tovplus.services.auth.throttle import throttle_for
from tovplus.services.auth.tokens import sha256_hex
from tovplus.services.auth.users import normalise_email

SESSION_PREFIX = "tovs_"
#: The browser session's cookie (set by the pages; read also by the OAuth2 callback route).
SESSION_COOKIE = "tovplus_session"
SESSION_PURPOSE = "session"
SESSION_TTL = timedelta(hours=12)
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024

_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)  # argon2id
_FAILED = "That email and password do not match an account."


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A successful sign-in: who, and the session token for the cookie."""

    caller: UserCaller
    session_token: str


def hash_password(password: str) -> str:
    """Check the password's length and return its argon2id hash."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"A password needs at least {MIN_PASSWORD_LENGTH} characters.",
            fields=[FieldIssue("password", "too_short", f"Use at least {MIN_PASSWORD_LENGTH} characters.")],
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            "That password is too long.",
            fields=[FieldIssue("password", "too_long", f"Use at most {MAX_PASSWORD_LENGTH} characters.")],
        )
    return _hasher.hash(password)


def set_password(session: Session, user: User, password: str) -> None:
    """Set the user's password (checked and hashed with :func:`hash_password`)."""
    user.password_hash = hash_password(password)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so both paths cost the same.

    Made on the first sign-in rather than at import, so processes that never sign anyone in
    (the worker, the command line) do not pay for an argon2 hash when they import the domain.
    """
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify(stored: str | None, password: str) -> bool:
    dummy = _dummy_hash()  # on every path, so the first sign-in costs the same for any email
    try:
        return _hasher.verify(stored or dummy, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _check(rt: Runtime, email: str, password: str) -> tuple[str, str, str, str] | None:
    """``(id, email, role, stored hash)`` of the user whose password this is, else ``None``."""
    if not email.strip() or not password or len(password) > MAX_PASSWORD_LENGTH or len(email) > 320:
        return None
    try:
        address = normalise_email(email)
    except InvalidInput:
        return None
    with rt.db.read() as session:
        user = session.scalar(select(User).where(User.email == address))
        stored = user.password_hash if user is not None else None
        found = (user.id, user.email, user.role) if user is not None else None
    if not _verify(stored, password) or found is None or stored is None:
        return None
    return (*found, stored)


def sign_in(rt: Runtime, email: str, password: str, *, client: str = "unknown") -> SignedIn:
    """Check the email and password; on success open a session and return its token.

    Attempts are throttled per ``client`` (its address) and per account, so that failing an
    account's password does not lock out its owner (:mod:`.throttle`): :class:`RateLimited`.
    """
    throttle = throttle_for(rt)
    throttle.admit(email, client)
    found = _check(rt, email, password)
    if found is None:
        throttle.failed(email, client)
        raise Unauthenticated(_FAILED)
    user_id, user_email, role, stored = found
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    with rt.db.write() as session:
        if _hasher.check_needs_rehash(stored):
            session.execute(
                update(User).where(User.id == user_id).values(password_hash=_hasher.hash(password))
            )
        session.add(
            UserToken(
                id=new_id("tok"),
                user_id=user_id,
                token_hash=sha256_hex(token),
                purpose=SESSION_PURPOSE,
                expires_at=utcnow() + SESSION_TTL,
                last_used_at=utcnow(),
            )
        )
    return SignedIn(UserCaller(user_id, user_email, role), token)


def session_caller(rt: Runtime, token: str | None) -> UserCaller | None:
    """The signed-in user for a session cookie, or ``None`` (unknown, expired or revoked)."""
    if not token or not token.startswith(SESSION_PREFIX) or len(token) > 200:
        return None
    now = utcnow()
    with rt.db.read() as session:
        row = session.execute(
            select(UserToken, User)
            .join(User, User.id == UserToken.user_id)
            .where(UserToken.token_hash == sha256_hex(token), UserToken.purpose == SESSION_PURPOSE)
        ).first()
        if row is None:
            return None
        tok, user = row
        if tok.revoked_at is not None or tok.expires_at is None or tok.expires_at <= now:
            return None
        return UserCaller(user.id, user.email, user.role)


def sign_out(rt: Runtime, token: str | None) -> None:
    """Revoke the session (unknown or already revoked tokens are ignored)."""
    if not token or not token.startswith(SESSION_PREFIX) or len(token) > 200:
        return
    with rt.db.write() as session:
        session.execute(
            update(UserToken)
            .where(
                UserToken.token_hash == sha256_hex(token),
                UserToken.purpose == SESSION_PURPOSE,
                UserToken.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
        )
