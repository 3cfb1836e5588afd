"""Who is calling, and may they do this?

Two kinds of callers carry bearer tokens: users (planners and admins, token
``tovu_…``) and integration principals (the issued key ``tov_<key_id>_<secret>``).
Tokens and keys are stored only as SHA-256 hashes. :func:`authorize` is the one
function that answers "may this caller do action A on occasion O (event E)".
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import (
    Connection,
    Event,
    Grant,
    IntegrationKey,
    IntegrationPrincipal,
    Occasion,
    OccasionPlanner,
    User,
    UserToken,
)
from tovplus.db.types import utcnow
from tovplus.errors import Conflict, FieldIssue, Forbidden, InvalidInput, NotFound, Unauthenticated
from tovplus.integrations.contract import Scope, ScopeType
from tovplus.integrations.redaction import scrubber

USER_TOKEN_PREFIX = "tovu_"  # noqa: S105 - a prefix, not a secret
INTEGRATION_KEY_PREFIX = "tov_"
ROLES = ("planner", "admin")
#: Last-used times are written at most this often per key or token.
LAST_USED_GRANULARITY = timedelta(seconds=60)
_EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}")
#: Every id this service hands out matches this; anything else is an unknown resource.
_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")

#: Actions a user may take on an occasion; integration principals hold only grantable ones.
MANAGE = "occasion.manage"


def is_id(value: object) -> bool:
    """True when ``value`` could be one of our ids (so it is safe to look up)."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class UserCaller:
    user_id: str
    email: str
    role: str

    @property
    def subject_id(self) -> str:
        return f"user:{self.user_id}"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class IntegrationCaller:
    principal_id: str
    subject_id: str
    connection_id: str
    key_id: str
    scope: Scope
    #: Action keys from the principal's active grant rows: what is enforced.
    action_keys: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return False


Caller = UserCaller | IntegrationCaller


# --- users -------------------------------------------------------------------------------


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL_RE.fullmatch(email) or len(email) > 320:
        raise InvalidInput(
            "Enter a valid email address.", fields=[FieldIssue("email", "invalid", "Not an email.")]
        )
    return email


def create_user(session: Session, email: str, role: str, *, password_hash: str | None = None) -> User:
    if role not in ROLES:
        raise InvalidInput(
            f"role must be one of {', '.join(ROLES)}", fields=[FieldIssue("role", "invalid", "")]
        )
    user = User(id=new_id("usr"), email=normalise_email(email), role=role, password_hash=password_hash)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"A user with email {user.email} already exists.", code="email_taken") from None
    return user


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
    if key.revoked_at is not None or principal.revoked_at is not None or state == "revoked":
        return None
    return ResolvedKey(key, principal, state)


def needs_touch(last_used_at: datetime | None, now: datetime) -> bool:
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


def active_action_keys(session: Session, subject_id: str) -> frozenset[str]:
    rows = session.scalars(
        select(Grant.action_key).where(Grant.subject_id == subject_id, Grant.revoked_at.is_(None))
    )
    return frozenset(rows)


# --- authentication -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Authentication:
    caller: Caller
    #: Set when a last-used time should be written after the request (coalesced).
    touch_key_id: str | None = None
    touch_token_hash: str | None = None


def authenticate(session: Session, token: str | None, now: datetime | None = None) -> Authentication:
    """Resolve a bearer token to a caller or raise :class:`Unauthenticated`."""
    now = now or utcnow()
    if not token:
        raise Unauthenticated("Send a bearer token in the Authorization header.")
    if token.startswith(USER_TOKEN_PREFIX) and len(token) <= 200:
        row = session.execute(
            select(UserToken, User)
            .join(User, User.id == UserToken.user_id)
            .where(UserToken.token_hash == sha256_hex(token))
        ).first()
        if row is not None:
            tok, user = row
            if tok.revoked_at is None and (tok.expires_at is None or tok.expires_at > now):
                return Authentication(
                    UserCaller(user.id, user.email, user.role),
                    touch_token_hash=tok.token_hash if needs_touch(tok.last_used_at, now) else None,
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
        if resolved.connection_state != "enabled":
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
        session.execute(
            update(UserToken).where(UserToken.token_hash == auth.touch_token_hash).values(last_used_at=now)
        )


# --- authorization -------------------------------------------------------------------------


def require_user(caller: Caller) -> UserCaller:
    if not isinstance(caller, UserCaller):
        raise Forbidden("Integration keys cannot use this route.")
    return caller


def require_admin(caller: Caller) -> UserCaller:
    user = require_user(caller)
    if not user.is_admin:
        raise Forbidden("Only administrators may use this route.")
    return user


def plans(session: Session, user_id: str, occasion_id: str) -> bool:
    return session.get(OccasionPlanner, (occasion_id, user_id)) is not None


def authorize(
    session: Session, caller: Caller, action: str, occasion_id: str, *, event_id: str | None = None
) -> Occasion:
    """Load the occasion and check that ``caller`` may do ``action`` on it (and on ``event_id``).

    Planners get 404 for occasions they do not plan (they must not learn they exist).
    Integration principals get 403 for anything outside their scope or grants, checked
    before the occasion is looked up, so a key cannot probe which ids exist elsewhere.
    """
    if isinstance(caller, IntegrationCaller):
        scope = caller.scope
        if scope.type is not ScopeType.PLATFORM and scope.occasion_id != occasion_id:
            raise Forbidden("This integration key is not scoped to this occasion.")
        if scope.type is ScopeType.EVENT and event_id is not None and event_id != scope.event_id:
            raise Forbidden("This integration key is not scoped to this event.")
        if action == MANAGE:
            raise Forbidden("Integration keys cannot manage integrations.")
        if action not in caller.action_keys:
            raise Forbidden(f"This integration key is not granted {action}.")
    occasion = session.get(Occasion, occasion_id) if is_id(occasion_id) else None
    if occasion is None:
        raise NotFound("No such occasion.")
    if (
        isinstance(caller, UserCaller)
        and not caller.is_admin
        and not plans(session, caller.user_id, occasion_id)
    ):
        raise NotFound("No such occasion.")
    return occasion


def event_of_occasion(session: Session, occasion_id: str, event_id: str) -> Event | None:
    event = session.get(Event, event_id) if is_id(event_id) else None
    return event if event is not None and event.occasion_id == occasion_id else None
