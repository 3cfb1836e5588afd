"""Bearer tokens and integration keys: issuing, hashing, parsing, resolving, recording use.

Users carry ``tovu_…`` tokens; integration principals carry issued keys
``tov_<key_id>_<secret>``. Both are stored only as SHA-256 hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import Connection, Grant, IntegrationKey, IntegrationPrincipal, User, UserToken
from tovplus.db.states import ConnectionState
from tovplus.db.types import utcnow
from tovplus.integrations.redaction import scrubber

USER_TOKEN_PREFIX = "tovu_"  # noqa: S105 - a prefix, not a secret
INTEGRATION_KEY_PREFIX = "tov_"
#: Last-used times are written at most this often per key or token.
LAST_USED_GRANULARITY = timedelta(seconds=60)


def sha256_hex(value: str) -> str:
    """The hex SHA-256 of ``value``: how tokens and key secrets are stored."""
    return hashlib.sha256(value.encode()).hexdigest()


# --- user tokens ------------------------------------------------------------------------------


def issue_user_token(
    session: Session, user: User, *, purpose: str = "api", ttl: timedelta | None = None
) -> str:
    """Create a bearer token for ``user`` and return it; only its hash is stored."""
    token = USER_TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        UserToken(
            id=new_id("tok"),
            user_id=user.id,
            token_hash=sha256_hex(token),
            purpose=purpose,
            expires_at=utcnow() + ttl if ttl else None,
        )
    )
    return token


def revoke_user_token(session: Session, token: str) -> None:
    """Revoke the user token ``token`` (unknown tokens are ignored)."""
    session.execute(
        update(UserToken).where(UserToken.token_hash == sha256_hex(token)).values(revoked_at=utcnow())
    )


# --- integration keys ----------------------------------------------------------------------


def new_integration_key() -> tuple[str, str, str]:
    """Return ``(key_id, full_key, secret_hash)`` for a new issued key."""
    key_id = "ik" + secrets.token_hex(10)
    secret = secrets.token_urlsafe(32)
    full = f"{INTEGRATION_KEY_PREFIX}{key_id}_{secret}"
    scrubber.remember(full)
    return key_id, full, sha256_hex(secret)


def parse_integration_key(token: str) -> tuple[str, str] | None:
    """Split ``tov_<key_id>_<secret>`` into ``(key_id, secret)``; ``None`` if malformed."""
    if not token.startswith(INTEGRATION_KEY_PREFIX) or len(token) > 200:
        return None
    parts = token.split("_", 2)
    if len(parts) != 3 or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    """A live issued key with its principal and its connection's state."""

    key: IntegrationKey
    principal: IntegrationPrincipal
    connection_state: str


def resolve_integration_key(session: Session, token: str) -> ResolvedKey | None:
    """The live key, principal and connection state for ``token``, or ``None``.

    The secret is compared in constant time against the stored hash; revoked keys,
    revoked principals and rotated-away keys resolve to ``None``.
    """
    parsed = parse_integration_key(token)
    if parsed is None:
        return None
    key_id, secret = parsed
    row = session.execute(
        select(IntegrationKey, IntegrationPrincipal, Connection.state)
        .join(IntegrationPrincipal, IntegrationPrincipal.id == IntegrationKey.principal_id)
        .join(Connection, Connection.id == IntegrationPrincipal.connection_id)
        .where(IntegrationKey.key_id == key_id)
    ).first()
    presented = sha256_hex(secret)
    if row is None:
        hmac.compare_digest(presented, presented)  # same work either way
        return None
    key, principal, state = row
    if not hmac.compare_digest(presented, key.secret_hash):
        return None
    if key.revoked_at is not None or principal.revoked_at is not None or state == ConnectionState.REVOKED:
        return None
    return ResolvedKey(key, principal, state)


def active_action_keys(session: Session, subject_id: str) -> frozenset[str]:
    """The action keys of the subject's unrevoked grant rows."""
    rows = session.scalars(
        select(Grant.action_key).where(Grant.subject_id == subject_id, Grant.revoked_at.is_(None))
    )
    return frozenset(rows)


# --- last use -------------------------------------------------------------------------------


def needs_touch(last_used_at: datetime | None, now: datetime) -> bool:
    """True when a use at ``now`` should be written (at most once per granularity)."""
    return last_used_at is None or now - last_used_at >= LAST_USED_GRANULARITY


def touch_integration_key(session: Session, key_id: str, now: datetime) -> None:
    """Record a use of the key (coalesced to once per :data:`LAST_USED_GRANULARITY`)."""
    session.execute(
        update(IntegrationKey)
        .where(IntegrationKey.key_id == key_id)
        .where(
            (IntegrationKey.last_used_at.is_(None))
            | (IntegrationKey.last_used_at <= now - LAST_USED_GRANULARITY)
        )
        .values(last_used_at=now)
    )


def touch_user_token(session: Session, token_hash: str, now: datetime) -> None:
    """Record a use of the user token with this hash."""
    session.execute(update(UserToken).where(UserToken.token_hash == token_hash).values(last_used_at=now))
