"""The statements the sync hot path runs, built once at import.

Building a statement per call costs more than running it on SQLite, so claiming and finishing
a run bind parameters into these. ``ours`` in a name means "this worker still holds the run".
"""

from __future__ import annotations

from typing import Any, TypeAlias, cast

from sqlalchemy import Row, Table, bindparam, func, or_, select, update

from tovplus.db.models import Connection, SyncRun
from tovplus.db.states import SyncRunState
from tovplus.db.types import JSONType, UTCDateTime

RUNS = cast(Table, SyncRun.__table__)
CONNECTIONS = cast(Table, Connection.__table__)
RUN = RUNS.c
CONNECTION = CONNECTIONS.c
#: A row one of these statements returned (its columns are read by name).
AnyRow: TypeAlias = Row[*tuple[Any, ...]]


def _at(name: str) -> Any:
    return bindparam(name, type_=UTCDateTime())


#: Takes a queued, due run: ``running`` with a lease, one more attempt.
CLAIM = (
    update(RUNS)
    .where(
        RUN.id == bindparam("run_id"),
        RUN.state == SyncRunState.QUEUED,
        or_(RUN.next_attempt_at.is_(None), RUN.next_attempt_at <= _at("now")),
    )
    .values(
        state=SyncRunState.RUNNING,
        attempt=RUN.attempt + 1,
        lease_owner=bindparam("owner"),
        lease_expires_at=_at("lease_until"),
        started_at=func.coalesce(RUN.started_at, _at("now")),
    )
    .returning(RUN.connection_id, RUN.attempt, RUN.trigger, RUN.requested_by, RUN.request_id)
)
RUN_STATE = select(RUN.state, RUN.next_attempt_at).where(RUN.id == bindparam("run_id"))
CLAIMED_CONNECTION = select(
    CONNECTION.state,
    CONNECTION.integration_key,
    CONNECTION.occasion_id,
    CONNECTION.config,
    CONNECTION.last_success_at,
    CONNECTION.version,
    CONNECTION.suspended_at,
).where(CONNECTION.id == bindparam("connection_id"))
_OURS = (
    RUN.id == bindparam("run_id"),
    RUN.state == SyncRunState.RUNNING,
    RUN.lease_owner == bindparam("owner"),
    RUN.attempt == bindparam("held_attempt"),
)
#: Ends or re-queues a run this worker holds; every column is set, to one statement for all paths.
END_RUN = (
    update(RUNS)
    .where(*_OURS)
    .values(
        state=bindparam("new_state"),
        lease_owner=bindparam("new_owner"),
        lease_expires_at=None,
        next_attempt_at=func.coalesce(_at("new_next_attempt_at"), RUN.next_attempt_at),
        finished_at=_at("new_finished_at"),
        error=bindparam("new_error"),
        records_written=bindparam("new_records"),
        records_deleted=bindparam("new_deleted"),
        retry_reason=bindparam("new_retry_reason"),
    )
)
#: The connection as the finishing transaction needs it, locked (on PostgreSQL) until it commits.
FINISHING_CONNECTION = (
    select(
        CONNECTION.id,
        CONNECTION.state,
        CONNECTION.version,
        CONNECTION.health,
        CONNECTION.config,
        CONNECTION.occasion_id,
        CONNECTION.integration_key,
        CONNECTION.scope_type,
        CONNECTION.scope_event_id,
        CONNECTION.sync_interval_seconds,
        CONNECTION.sync_failures_in_row,
        CONNECTION.sync_paused_at,
    )
    .where(CONNECTION.id == bindparam("connection_id"))
    .with_for_update()
)
CONNECTION_HEALTH = select(CONNECTION.health).where(CONNECTION.id == bindparam("connection_id"))
#: Records a finished attempt on the connection: health, last sync, next due time, a new version.
RECORD_SYNC = (
    update(CONNECTIONS)
    .where(CONNECTION.id == bindparam("connection_id"))
    .values(
        sync_health=bindparam("new_sync_health"),
        sync_health_reasons=bindparam("new_sync_reasons", type_=JSONType),
        health=bindparam("new_health"),
        health_reasons=bindparam("new_health_reasons", type_=JSONType),
        last_sync_at=_at("new_last_sync_at"),
        last_sync_status=bindparam("new_status"),
        last_success_at=func.coalesce(_at("new_last_success_at"), CONNECTION.last_success_at),
        next_sync_at=_at("new_next_sync_at"),
        sync_failures_in_row=bindparam("new_failures_in_row"),
        sync_paused_at=_at("new_paused_at"),
        version=CONNECTION.version + 1,
    )
)
#: A run's checkpoint and start, as its finish reads them.
RUN_CHECKPOINT = select(RUN.checkpoint, RUN.started_at).where(RUN.id == bindparam("run_id"))
#: The state a successful run leaves on its connection (the next incremental pull starts there).
STORE_SYNC_STATE = (
    update(CONNECTIONS)
    .where(CONNECTION.id == bindparam("connection_id"))
    .values(sync_state=bindparam("new_sync_state", type_=JSONType))
)
