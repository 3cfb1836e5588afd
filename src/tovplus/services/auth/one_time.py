"""One-time tickets: a random value whose row is deleted the first time it is used.

The pages put one in every flash message (what the next page shows once, such as a newly
issued key), so a replayed flash cookie finds its ticket gone and shows nothing. The row is
a ``user_tokens`` row with ``purpose="flash"``, holding only the SHA-256 of the ticket and
an expiry. Using it is one ``DELETE … WHERE token_hash = ? AND expires_at > now``: of any
number of processes presenting the same ticket at once, exactly one deletes the row.
Tickets never carry a bearer token's prefix, so they can never authenticate anything.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete

from tovplus.db.ids import new_id
from tovplus.db.models import UserToken
from tovplus.db.types import utcnow
from tovplus.runtime import Runtime
from tovplus.services.auth.tokens import sha256_hex

ONE_TIME_PURPOSE = "flash"
#: The longest ticket :func:`use_ticket` looks up (what :func:`issue_ticket` makes is 32).
MAX_TICKET = 64


def issue_ticket(rt: Runtime, user_id: str, ttl: timedelta) -> str:
    """A new ticket for ``user_id``, good once within ``ttl``; the user's expired ones are swept."""
    ticket = secrets.token_urlsafe(24)
    now = utcnow()
    with rt.db.write() as session:
        session.execute(
            delete(UserToken).where(
                UserToken.user_id == user_id,
                UserToken.purpose == ONE_TIME_PURPOSE,
                UserToken.expires_at <= now,
            )
        )
        session.add(
            UserToken(
                id=new_id("tok"),
                user_id=user_id,
                token_hash=sha256_hex(ticket),
                purpose=ONE_TIME_PURPOSE,
                expires_at=now + ttl,
            )
        )
    return ticket


def use_ticket(rt: Runtime, user_id: str, ticket: str | None) -> bool:
    """True the first time ``user_id`` presents an unexpired ``ticket``; False ever after."""
    if not ticket or len(ticket) > MAX_TICKET:
        return False
    with rt.db.write() as session:
        result = session.execute(
            delete(UserToken).where(
                UserToken.token_hash == sha256_hex(ticket),
                UserToken.purpose == ONE_TIME_PURPOSE,
                UserToken.user_id == user_id,
                UserToken.expires_at > utcnow(),
            )
        )
        return int(result.rowcount) == 1  # type: ignore[attr-defined]
