"""What a run's attempt says about its connection's health, written in the run's own transaction.

* a run re-queued to retry makes the connection ``degraded`` at once, with the failure and the
  next attempt's time (:func:`record_retry_health`);
* a final run counts the failed runs in a row, and at ``settings.sync_pause_after_failures``
  pauses the schedule (:func:`streak_after`); ``runs.resume_schedule`` takes the pause away;
* routine successes fold into the previous identical ``sync.completed`` line
  (:func:`fold_into_previous`).

Every health change goes through :func:`tovplus.services.health.health_changed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tovplus.db.models import Activity
from tovplus.db.states import ConnectionState
from tovplus.integrations.contract import Health
from tovplus.runtime import Runtime
from tovplus.services.health import authorization_of, effective_health, health_changed, validation_of
from tovplus.services.sync.lease import Claim
from tovplus.services.sync.retry import paused_reason
from tovplus.services.sync.statements import CONNECTION, CONNECTIONS, FINISHING_CONNECTION, AnyRow


@dataclass(frozen=True, slots=True)
class RetryHealth:
    """The connection's health after a run was re-queued, and the deliveries announcing a change."""

    health: str | None
    delivery_ids: list[str]


def record_retry_health(rt: Runtime, session: Session, claim: Claim, reason: str) -> RetryHealth:
    """Make the connection ``degraded`` with ``reason`` while its run waits to retry.

    Nothing is judged of a connection that is not enabled any more or was edited meanwhile
    (the next attempt's claim sees that); ``None`` health then.
    """
    conn = session.execute(FINISHING_CONNECTION, {"connection_id": claim.connection_id}).first()
    if conn is None or conn.state != ConnectionState.ENABLED or conn.version != claim.version:
        return RetryHealth(None if conn is None else conn.health, [])
    adapter = rt.registry.find(conn.integration_key)
    present = frozenset(claim.secrets) | claim.unreadable_fields
    validation = (
        validation_of(rt, adapter, conn, present, authorization_of(session, adapter, conn.id))
        if adapter is not None
        else None
    )
    health, reasons = effective_health(conn.state, validation, Health.DEGRADED.value, [reason])
    session.execute(
        update(CONNECTIONS)
        .where(CONNECTION.id == conn.id, CONNECTION.version == conn.version)
        .values(
            sync_health=Health.DEGRADED.value,
            sync_health_reasons=[reason],
            health=health,
            health_reasons=reasons,
            version=CONNECTION.version + 1,
        )
    )
    return RetryHealth(health, announce(session, conn, health, reasons))


#: The health reason of a connection whose run was given up because its workers kept stopping.
GIVEN_UP_REASON = (
    "The workers running this sync kept stopping, so it was given up; the next scheduled sync tries again."
)


def record_given_up(session: Session, connection_ids: list[str]) -> None:
    """Health ``failing`` for enabled connections whose run the reaper gave up (it was maybe
    showing "retrying" until then). The next run judges validation again."""
    if not connection_ids:
        return
    rows = session.execute(
        select(CONNECTION.id, CONNECTION.integration_key, CONNECTION.occasion_id, CONNECTION.health)
        .where(CONNECTION.id.in_(connection_ids), CONNECTION.state == ConnectionState.ENABLED)
        .with_for_update()
    ).all()
    for conn in rows:
        reasons = [GIVEN_UP_REASON]
        session.execute(
            update(CONNECTIONS)
            .where(CONNECTION.id == conn.id)
            .values(
                sync_health=Health.FAILING.value,
                sync_health_reasons=reasons,
                health=Health.FAILING.value,
                health_reasons=reasons,
                last_sync_status="failed",
                version=CONNECTION.version + 1,
            )
        )
        announce(session, conn, Health.FAILING.value, reasons)


def announce(session: Session, conn: AnyRow, health: str, reasons: list[str]) -> list[str]:
    """``integration.health_changed`` when ``health`` differs from the row's (delivery ids)."""
    return health_changed(session, conn, previous=conn.health, health=health, reasons=reasons)


@dataclass(frozen=True, slots=True)
class Streak:
    """Failed runs in a row after this one, and whether the schedule is (now) paused."""

    failures: int
    paused_at: datetime | None
    #: Set when this run paused the schedule: the reason to add to health.
    pause_reason: str | None = None


def streak_after(rt: Runtime, conn: AnyRow, *, succeeded: bool, now: datetime) -> Streak:
    """The streak a final run leaves: a success clears it; a failure at the threshold pauses."""
    if succeeded:
        return Streak(0, None)
    failures = (conn.sync_failures_in_row or 0) + 1
    if conn.sync_paused_at is not None:
        return Streak(failures, conn.sync_paused_at, paused_reason(failures))
    if failures >= rt.settings.sync_pause_after_failures:
        return Streak(failures, now, paused_reason(failures))
    return Streak(failures, None)


def fold_into_previous(
    session: Session, connection_id: str, kind: str, summary: str, details: dict[str, Any]
) -> bool:
    """Count a routine success into the connection's latest entry when that is the same line.

    "The same line" is a ``kind`` entry with the same summary and health, no drift and no
    health change. Returns ``True`` when it folded (then no new entry is written).
    """
    latest = session.execute(
        select(Activity.id, Activity.kind, Activity.summary, Activity.details, Activity.repeat_count)
        .where(Activity.connection_id == connection_id)
        .order_by(Activity.id.desc())
        .limit(1)
    ).first()
    if latest is None or latest.kind != kind or latest.summary != summary:
        return False
    previous = latest.details or {}
    if previous.get("health") != details.get("health") or "previous_health" in previous:
        return False
    merged = {**previous, "last_sync_run_id": details.get("sync_run_id"), "last_at": details.get("at")}
    session.execute(
        update(Activity)
        .where(Activity.id == latest.id)
        .values(repeat_count=Activity.repeat_count + 1, details=merged)
        .execution_options(synchronize_session=False)
    )
    return True
