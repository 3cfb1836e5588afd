"""Asking for a sync: a queued row in ``sync_runs``, at most one active per connection."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import Connection, SyncRun
from tovplus.db.states import ACTIVE_SYNC_STATES, ConnectionState, SyncRunState
from tovplus.db.types import utcnow
from tovplus.errors import Conflict, NotFound
from tovplus.runtime import Runtime
from tovplus.services import health
from tovplus.services.auth import MANAGE, Caller, authorize

#: The actor of what the scheduler and the workers do on nobody's request.
SYSTEM = "system"


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


def request_sync(rt: Runtime, caller: Caller, occasion_id: str, connection_id: str) -> str:
    """Queue a manual sync of an enabled connection whose adapter syncs; returns the run id."""
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
        run_id, created = enqueue_run(session, row.id, trigger="manual", requested_by=caller.subject_id)
    if created:
        rt.dispatcher.sync_run(run_id)
    return run_id
