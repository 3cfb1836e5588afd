"""The adapter kill switch: an admin suspends every enabled connection of one adapter (no syncs,
actions or callbacks; health ``degraded`` with the reason) and resumes exactly those.

A suspended connection keeps its state (``enabled``); ``suspended_at`` says it is suspended, and
``services.health.is_suspended`` is what the sync claim, the scheduler, manual syncs, callbacks
and actions check. Each write bumps the connection's ``version``, so a sync already running when
the switch is thrown stores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tovplus.db.models import Connection, ConnectionSecret
from tovplus.db.states import ConnectionState
from tovplus.db.types import utcnow
from tovplus.errors import FieldIssue, InvalidInput, NotFound
from tovplus.integrations.contract import Adapter, Health
from tovplus.integrations.payloads import format_timestamp
from tovplus.runtime import Runtime
from tovplus.services import activity, health, webhooks
from tovplus.services.auth import Caller, require_admin

MAX_REASON_CHARS = 400


def _adapter(rt: Runtime, integration_key: str) -> Adapter:
    adapter = rt.registry.find(integration_key) if len(integration_key) <= 64 else None
    if adapter is None:
        raise NotFound("No such integration.")
    return adapter


def _check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_CHARS:
        raise InvalidInput(
            "Say why the integration is suspended.",
            fields=[FieldIssue("reason", "invalid", f"Give a reason of 1 to {MAX_REASON_CHARS} characters.")],
        )
    return reason


def suspend_integration(rt: Runtime, caller: Caller, integration_key: str, reason: str) -> int:
    """Suspend every enabled, not yet suspended connection of the adapter; returns how many."""
    admin = require_admin(caller)
    adapter = _adapter(rt, integration_key)
    reason = _check_reason(reason)
    health_reason = health.suspension_reason(reason)
    with rt.db.write() as session:
        rows = session.scalars(
            select(Connection).where(
                Connection.integration_key == adapter.integration_key,
                Connection.state == ConnectionState.ENABLED,
                Connection.suspended_at.is_(None),
            )
        ).all()
        now = utcnow()
        for row in rows:
            previous = row.health
            _write(
                session,
                row,
                suspended_at=now,
                suspended_reason=reason,
                health=Health.DEGRADED.value,
                health_reasons=[health_reason],
            )
            _record(
                rt,
                session,
                row,
                admin.subject_id,
                "suspended",
                f"{adapter.name} connection suspended by an administrator: {reason}",
                previous,
                [health_reason],
            )
    return len(rows)


def resume_integration(rt: Runtime, caller: Caller, integration_key: str) -> int:
    """Resume exactly the suspended connections of the adapter; their health is judged again and
    enabled ones are due to sync at once. Returns how many."""
    admin = require_admin(caller)
    adapter = _adapter(rt, integration_key)
    with rt.db.write() as session:
        rows = session.scalars(
            select(Connection).where(
                Connection.integration_key == adapter.integration_key, Connection.suspended_at.is_not(None)
            )
        ).all()
        now = utcnow()
        for row in rows:
            previous = row.health
            present = frozenset(
                session.scalars(
                    select(ConnectionSecret.field_key).where(ConnectionSecret.connection_id == row.id)
                )
            )
            validation = health.validation_of(
                rt, adapter, row, present, health.authorization_of(session, adapter, row.id)
            )
            new_health, reasons = health.effective_health(
                row.state, validation, row.sync_health, list(row.sync_health_reasons)
            )
            values: dict[str, Any] = {
                "suspended_at": None,
                "suspended_reason": None,
                "health": new_health,
                "health_reasons": reasons,
            }
            if row.state == ConnectionState.ENABLED:
                values["next_sync_at"] = now
            _write(session, row, **values)
            _record(
                rt,
                session,
                row,
                admin.subject_id,
                "resumed",
                f"{adapter.name} connection resumed by an administrator",
                previous,
                reasons,
                new_health,
            )
    return len(rows)


@dataclass(frozen=True, slots=True)
class AdapterSuspension:
    """The kill switch of one adapter as the admin page shows it."""

    integration_key: str
    name: str
    #: Enabled connections that are running (a suspend would stop these).
    running: int
    suspended: int
    #: When (RFC 3339) the earliest of its suspended connections was suspended, and why (``None``: none is).
    since: str | None
    reason: str | None


def suspension_overview(rt: Runtime, caller: Caller) -> list[AdapterSuspension]:
    """Per installed adapter: how many of its connections run, how many are suspended, since when."""
    require_admin(caller)
    with rt.db.read() as session:
        counts = session.execute(
            select(
                Connection.integration_key,
                func.count().filter(Connection.suspended_at.is_(None)),
                func.count().filter(Connection.suspended_at.is_not(None)),
                func.min(Connection.suspended_at),
            )
            .where(Connection.state == ConnectionState.ENABLED)
            .group_by(Connection.integration_key)
        ).all()
        by_key = {
            key: (int(run), int(sus), format_timestamp(since) if since else None)
            for key, run, sus, since in counts
        }
        reasons = dict(
            session.execute(
                select(Connection.integration_key, func.max(Connection.suspended_reason))
                .where(Connection.suspended_at.is_not(None))
                .group_by(Connection.integration_key)
            ).all()
        )
    return [
        AdapterSuspension(
            a.integration_key,
            a.name,
            *by_key.get(a.integration_key, (0, 0, None)),
            reason=reasons.get(a.integration_key),
        )
        for a in rt.registry
    ]


def _write(session: Session, row: Connection, **values: Any) -> None:
    session.execute(
        update(Connection)
        .where(Connection.id == row.id)
        .values(version=Connection.version + 1, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )


def _record(
    rt: Runtime,
    session: Session,
    row: Connection,
    actor: str,
    what: str,
    summary: str,
    previous: str,
    reasons: list[str],
    new_health: str = Health.DEGRADED.value,
) -> None:
    """The activity entry and, when health moved, the ``integration.health_changed`` event."""
    activity.record(
        session,
        kind=f"connection.{what}",
        actor=actor,
        summary=summary,
        occasion_id=row.occasion_id,
        connection_id=row.id,
        integration_key=row.integration_key,
        details={"health": new_health, "previous_health": previous},
    )
    ids = health.health_changed(session, row, previous=previous, health=new_health, reasons=reasons)
    webhooks.dispatch_after_commit(session, rt, ids)
