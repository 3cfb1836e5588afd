"""Integration principals, their issued keys and their explicit grants."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import Grant, IntegrationKey, IntegrationPrincipal
from tovplus.db.types import utcnow
from tovplus.integrations.contract import Scope
from tovplus.services.auth.tokens import new_integration_key

PRINCIPAL_TYPE = "integration_principal"


def subject_for(connection_id: str) -> str:
    """The subject id of a connection's integration principal."""
    return f"integration:{connection_id}"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A newly issued key: the only time its full value is known."""

    key_id: str
    full_key: str


def create_principal(
    session: Session, connection_id: str, scope: Scope, action_keys: Iterable[str], actor: str
) -> tuple[IntegrationPrincipal, IssuedKey]:
    """Create the connection's principal, its first key and one grant per action key."""
    principal = IntegrationPrincipal(
        id=new_id("prn"),
        subject_id=subject_for(connection_id),
        connection_id=connection_id,
        scope_type=scope.type.value,
        scope_occasion_id=scope.occasion_id,
        scope_event_id=scope.event_id,
    )
    session.add(principal)
    session.flush()
    issued = issue_key(session, principal.id)
    set_grants(session, principal, action_keys, actor)
    return principal, issued


def issue_key(session: Session, principal_id: str) -> IssuedKey:
    """Issue a new key for the principal (only its hash is stored)."""
    key_id, full, secret_hash = new_integration_key()
    session.add(
        IntegrationKey(id=new_id("key"), principal_id=principal_id, key_id=key_id, secret_hash=secret_hash)
    )
    return IssuedKey(key_id, full)


def rotate_key(session: Session, principal_id: str, now: datetime | None = None) -> IssuedKey:
    """Revoke every live key of the principal and issue a new one."""
    revoke_keys(session, principal_id, now)
    return issue_key(session, principal_id)


def revoke_keys(session: Session, principal_id: str, now: datetime | None = None) -> None:
    """Revoke every live key of the principal."""
    session.execute(
        update(IntegrationKey)
        .where(IntegrationKey.principal_id == principal_id, IntegrationKey.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )


def set_grants(
    session: Session, principal: IntegrationPrincipal, action_keys: Iterable[str], actor: str
) -> bool:
    """Make the principal's active grants exactly ``action_keys`` in its scope. True if changed.

    There is one grant row per (principal, scope, action key): a key taken away is
    marked revoked, and a key given back reactivates its row.
    """
    wanted = set(action_keys)
    rows = session.scalars(
        select(Grant)
        .where(
            Grant.subject_id == principal.subject_id,
            Grant.scope_type == principal.scope_type,
            Grant.scope_occasion_id.is_(None)
            if principal.scope_occasion_id is None
            else Grant.scope_occasion_id == principal.scope_occasion_id,
            Grant.scope_event_id.is_(None)
            if principal.scope_event_id is None
            else Grant.scope_event_id == principal.scope_event_id,
        )
        .order_by(Grant.id)
    ).all()
    by_key = {g.action_key: g for g in rows}
    now = utcnow()
    changed = False
    for grant in rows:
        if grant.action_key not in wanted and grant.revoked_at is None:
            grant.revoked_at = now
            changed = True
        elif grant.action_key in wanted and grant.revoked_at is not None:
            grant.revoked_at, grant.created_by, grant.created_at = None, actor, now
            changed = True
    for key in sorted(wanted - set(by_key)):
        session.add(
            Grant(
                id=new_id("grt"),
                subject_id=principal.subject_id,
                scope_type=principal.scope_type,
                scope_occasion_id=principal.scope_occasion_id,
                scope_event_id=principal.scope_event_id,
                action_key=key,
                created_by=actor,
                created_at=now,
            )
        )
        changed = True
    return changed


def revoke_principal(session: Session, principal: IntegrationPrincipal, now: datetime | None = None) -> None:
    """Kill the principal's keys and grants at once."""
    now = now or utcnow()
    principal.revoked_at = now
    revoke_keys(session, principal.id, now)
    session.execute(
        update(Grant)
        .where(Grant.subject_id == principal.subject_id, Grant.revoked_at.is_(None))
        .values(revoked_at=now)
    )
