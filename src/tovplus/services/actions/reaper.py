"""Taking back action runs: expired leases (a worker died mid-action) and lost queue messages.

Run by the scheduler's leader every tick. A run whose lease expired goes back to ``queued``
(its attempt counts; the next attempt sends the same ``Idempotency-Key``); one that has used up
every attempt that way fails, recording
its end with an ``action.failed`` entry and webhook. Queued runs still waiting a lease period after their
``next_attempt_at`` are handed out again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tovplus.db.models import ActionRun, Connection
from tovplus.db.sql import one_of
from tovplus.db.states import ActionRunState
from tovplus.db.types import utcnow
from tovplus.db.write_lock import locked_write
from tovplus.runtime import Runtime
from tovplus.services import activity, webhooks
from tovplus.services.actions.finish import ACTION_FAILED_EVENT

STOPPED = "The worker running this action stopped; it was queued again."
GAVE_UP = "The workers running this action kept stopping; it was given up."


def reap_action_runs(
    rt: Runtime, *, now: datetime | None = None, limit: int = 1000
) -> tuple[list[str], list[str]]:
    """Take back expired and overdue runs; returns ``(run ids to dispatch, webhook delivery ids)``."""
    now = now or utcnow()
    grace = timedelta(seconds=rt.settings.lease_seconds)
    attempts = len(rt.settings.action_retry_delays) + 1
    expired_q = (
        select(ActionRun)
        .where(ActionRun.state == ActionRunState.RUNNING, ActionRun.lease_expires_at < now)
        .order_by(ActionRun.lease_expires_at)
        .limit(limit)
    )
    overdue_q = (
        select(ActionRun.id)
        .where(ActionRun.state == ActionRunState.QUEUED, ActionRun.next_attempt_at <= now - grace)
        .order_by(ActionRun.next_attempt_at)
        .limit(limit)
    )
    with rt.db.read() as session:  # the usual case: nothing to do, no write lock taken
        if (
            session.execute(expired_q.limit(1)).first() is None
            and session.execute(overdue_q.limit(1)).first() is None
        ):
            return [], []
    again: list[str] = []
    deliveries: list[str] = []
    with locked_write(rt.db) as session:
        for run in session.scalars(expired_q).all():
            still = (
                ActionRun.id == run.id,
                ActionRun.state == ActionRunState.RUNNING,
                ActionRun.lease_expires_at < now,
            )
            if run.attempt < attempts:
                session.execute(
                    update(ActionRun)
                    .where(*still)
                    .values(
                        state=ActionRunState.QUEUED,
                        lease_owner=None,
                        lease_expires_at=None,
                        next_attempt_at=now,
                        error=STOPPED,
                    )
                    .execution_options(synchronize_session=False)
                )
                again.append(run.id)
                continue
            done = session.execute(
                update(ActionRun)
                .where(*still)
                .values(
                    state=ActionRunState.FAILED,
                    lease_expires_at=None,
                    next_attempt_at=None,
                    finished_at=now,
                    error=GAVE_UP,
                )
                .execution_options(synchronize_session=False)
            )
            if done.rowcount == 1:  # type: ignore[attr-defined]
                deliveries.extend(_record_given_up(session, run))
        overdue = list(session.scalars(overdue_q))
        if overdue:
            session.execute(
                update(ActionRun)
                .where(one_of(ActionRun.id.expression, overdue), ActionRun.state == ActionRunState.QUEUED)
                .values(next_attempt_at=now)
                .execution_options(synchronize_session=False)
            )
    return list(dict.fromkeys([*again, *overdue])), deliveries


def _record_given_up(session: Session, run: ActionRun) -> list[str]:
    """``action.failed`` and its webhook for a run the reaper gave up."""
    conn = session.get(Connection, run.connection_id)
    if conn is None:
        return []
    data = {
        "connection_id": conn.id,
        "integration_key": conn.integration_key,
        "occasion_id": conn.occasion_id,
        "action_run_id": run.id,
        "action_key": run.action_key,
        "attempts": run.attempt,
        "error": GAVE_UP,
    }
    activity.record(
        session,
        kind="action.failed",
        actor="system",
        summary=f"{run.action_key} failed: {GAVE_UP}",
        occasion_id=conn.occasion_id,
        connection_id=conn.id,
        integration_key=conn.integration_key,
        details={**data, "trigger": run.trigger},
    )
    return webhooks.emit_event(
        session, occasion_id=conn.occasion_id, event_type=ACTION_FAILED_EVENT, data=data
    )
