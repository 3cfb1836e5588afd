"""Users: creating them, their email addresses."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import User
from tovplus.db.sql import one_of
from tovplus.errors import Conflict, FieldIssue, InvalidInput
from tovplus.services.auth.callers import ROLES

_EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}")


def normalise_email(email: str) -> str:
    """The address trimmed and lower-cased, or :class:`InvalidInput` when it is not one."""
    email = email.strip().lower()
    if not _EMAIL_RE.fullmatch(email) or len(email) > 320:
        raise InvalidInput(
            "Enter a valid email address.", fields=[FieldIssue("email", "invalid", "Not an email.")]
        )
    return email


def create_user(session: Session, email: str, role: str, *, password_hash: str | None = None) -> User:
    """Add a user (``role`` one of :data:`ROLES`); :class:`Conflict` when the email is taken."""
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


def user_emails(session: Session, user_ids: Iterable[str]) -> dict[str, str]:
    """``{user_id: email}`` for the users among ``user_ids`` (unknown ids are left out)."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.email).where(one_of(User.id.expression, wanted)))
    return dict(rows.all())
