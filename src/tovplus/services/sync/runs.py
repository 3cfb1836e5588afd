"""Asking for a sync: a queued row in ``sync_runs``, at most one active per connection."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import Connection, OAuthGrant, SyncRun
from tovplus.db.states import ACTIVE_SYNC_STATES, ConnectionState, SyncRunState, SyncTrigger
from tovplus.db.types import utcnow
from tovplus.errors import Conflict, NotFound
from tovplus.integrations.auth import AuthorizationStatus
from tovplus.integrations.contract import Adapter
from tovplus.runtime import Runtime
from tovplus.services import health, oauth
from tovplus.services.auth import MANAGE, Caller, authorize

#: The actor of what the scheduler and the workers do on nobody's request.
SYSTEM = "system"


def make_full(session: Session, run_id: str) -> None:
    """Turn the connection's waiting run into a full one, unless it has started (then 409)."""
    result = session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id, SyncRun.state == SyncRunState.QUEUED, SyncRun.attempt == 0)
        .values(trigger=SyncTrigger.FULL)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            "A sync of this connection is running; ask for a full sync again when it has finished.",
            code="sync_in_progress",
        )


def active_run_id(session: Session, connection_id: str) -> str | None:
    """The connection's queued or running run, if it has one."""
    return session.scalar(
        select(SyncRun.id).where(
            SyncRun.connection_id == connection_id, SyncRun.state.in_(ACTIVE_SYNC_STATES)
        )
    )


def enqueue_run(session: Session, connection_id: str, *, trigger: str, requested_by: str) -> tuple[str, bool]:
    """Insert a queued run unless one is active. Returns ``(run_id, created)``."""
    existing = active_run_id(session, connection_id)
    if existing is not None:
        return existing, False
    run = SyncRun(
        id=new_id("run"),
        connection_id=connection_id,
        state=SyncRunState.QUEUED,
        trigger=trigger,
        requested_by=requested_by,
        attempt=0,
        next_attempt_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(run)
    except IntegrityError:  # another request queued one at the same moment
        existing = active_run_id(session, connection_id)
        if existing is None:
            raise
        return existing, False
    return run.id, True


def request_sync(
    rt: Runtime, caller: Caller, occasion_id: str, connection_id: str, *, full: bool = False
) -> str:
    """Queue a manual sync of an enabled connection whose adapter syncs; returns the run id.

    ``full`` asks for everything again (trigger ``full``: no state, deletions detected).
    """
    with rt.db.write() as session:
        authorize(session, caller, MANAGE, occasion_id)
        row = session.get(Connection, connection_id) if len(connection_id) <= 40 else None
        if row is None or row.occasion_id != occasion_id:
            raise NotFound("No such connection.")
        adapter = rt.registry.find(row.integration_key)
        if adapter is None or not adapter.supports_background_sync:
            raise Conflict("This integration does not sync in the background.", code="sync_not_supported")
        if row.state != ConnectionState.ENABLED:
            raise Conflict("Only enabled connections sync.", code="connection_not_enabled")
        health.require_not_suspended(row)
        _require_grant(session, adapter, row)
        trigger = SyncTrigger.FULL if full else SyncTrigger.MANUAL
        run_id, created = enqueue_run(session, row.id, trigger=trigger, requested_by=caller.subject_id)
        resume_schedule(session, row.id)
        if full and not created:
            make_full(session, run_id)
        elif not created:  # a run waiting to retry: try it now instead of queueing another
            created = _due_now(session, run_id)
    if created:
        rt.dispatcher.sync_run(run_id)
    return run_id


def _require_grant(session: Session, adapter: Adapter, row: Connection) -> None:
    """409 for an OAuth2 connection whose grant the partner refused (it must be reconnected first)."""
    if adapter.oauth2 is None:
        return
    if oauth.grant_status(session.get(OAuthGrant, row.id)) == AuthorizationStatus.RECONNECT_REQUIRED:
        raise Conflict(
            f"{adapter.name} no longer accepts this connection's access: press Reconnect to grant it "
            "again, then sync.",
            code="reconnect_required",
        )


def resume_schedule(session: Session, connection_id: str) -> bool:
    """Take a paused schedule's pause away, in the caller's transaction; ``True`` if it was paused.

    The schedule pauses after ``TOVPLUS_SYNC_PAUSE_AFTER_FAILURES`` failed runs in a row; a
    manual sync resumes it, and so should a passing credential check. The failure count
    starts again and the connection is due at once; health stays until the next run.
    """
    result = session.execute(
        update(Connection)
        .where(Connection.id == connection_id, Connection.sync_paused_at.is_not(None))
        .values(sync_paused_at=None, sync_failures_in_row=0, next_sync_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _due_now(session: Session, run_id: str) -> bool:
    """Make a run that waits to retry due now; ``True`` if it was one (queue it again)."""
    result = session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id, SyncRun.state == SyncRunState.QUEUED, SyncRun.attempt > 0)
        .values(next_attempt_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def retry_now(rt: Runtime, caller: Caller, occasion_id: str, connection_id: str, run_id: str) -> str:
    """Make a run that waits to retry due at once ("Retry now"); 409 for any other run."""
    with rt.db.write() as session:
        authorize(session, caller, MANAGE, occasion_id)
        row = session.get(Connection, connection_id) if len(connection_id) <= 40 else None
        if row is None or row.occasion_id != occasion_id:
            raise NotFound("No such connection.")
        run = session.get(SyncRun, run_id) if len(run_id) <= 40 else None
        if run is None or run.connection_id != row.id:
            raise NotFound("No such sync run.")
        if not _due_now(session, run.id):
            raise Conflict("This sync run is not waiting to retry.", code="not_retry_scheduled")
    rt.dispatcher.sync_run(run_id)
    return run_id
