"""A connection's sync run history, its schedule as the page tells it, and "Retry now"."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from tovplus.db.models import Connection, SyncRun
from tovplus.db.states import SyncRunShownState, SyncRunState
from tovplus.errors import NotFound
from tovplus.integrations.payloads import format_timestamp
from tovplus.runtime import Runtime
from tovplus.runtime.pagination import Page
from tovplus.runtime.views import View
from tovplus.services import sync as syncs
from tovplus.services.auth import MANAGE, Caller, authorize, is_id
from tovplus.services.connections import store
from tovplus.services.sync import SyncRunModel

#: Runs the connection page's run log shows.
RUN_LOG_SIZE = 10


class SyncScheduleModel(View):
    """What the connection page says about sync: the latest runs and what happens next."""

    runs: list[SyncRunModel]
    #: The queued, running or retry-waiting run, if there is one (also the first of ``runs``).
    active_run: SyncRunModel | None
    next_sync_at: str | None
    #: Set while the schedule is paused after too many failed runs in a row.
    paused_at: str | None
    failures_in_row: int


def connection_sync_runs(
    rt: Runtime,
    caller: Caller,
    occasion_id: str,
    connection_id: str,
    *,
    limit: int | None,
    cursor: str | None,
) -> Page[SyncRunModel]:
    """The connection's sync runs, newest first (404 for anyone who may not manage it)."""
    with rt.db.read() as session:
        authorize(session, caller, MANAGE, occasion_id)
        store.load_connection(session, occasion_id, connection_id)
        return syncs.list_sync_runs(session, connection_id, limit=limit, cursor=cursor)


def sync_schedule(rt: Runtime, caller: Caller, occasion_id: str, connection_id: str) -> SyncScheduleModel:
    """The run log and the schedule of one connection (404 for anyone who may not manage it)."""
    with rt.db.read() as session:
        authorize(session, caller, MANAGE, occasion_id)
        row = store.load_connection(session, occasion_id, connection_id)
        runs = syncs.list_sync_runs(session, connection_id, limit=RUN_LOG_SIZE, cursor=None).items
    active_states = {SyncRunShownState.QUEUED, SyncRunShownState.RUNNING, SyncRunShownState.RETRY_SCHEDULED}
    active = next((r for r in runs if r.state in active_states), None)
    return SyncScheduleModel(
        runs=runs,
        active_run=active,
        next_sync_at=format_timestamp(row.next_sync_at) if row.next_sync_at else None,
        paused_at=format_timestamp(row.sync_paused_at) if row.sync_paused_at else None,
        failures_in_row=row.sync_failures_in_row or 0,
    )


def _retrying(conditions: list[ColumnElement[bool]]) -> Select[int]:
    return (
        select(func.count(func.distinct(SyncRun.connection_id)))
        .join(Connection, Connection.id == SyncRun.connection_id)
        .where(SyncRun.state == SyncRunState.QUEUED, SyncRun.attempt > 0, *conditions)
    )


#: Built once: the admin list's unfiltered summary asks it on every request, and building it
#: took as long as running it (docs/benchmarks.md, "Lists").
_RETRYING_ANY = _retrying([])


def retrying_count(session: Session, conditions: list[ColumnElement[bool]]) -> int:
    """How many connections matching ``conditions`` have a run waiting to retry."""
    return int(session.scalar(_retrying(conditions) if conditions else _RETRYING_ANY) or 0)


def retry_run_now(rt: Runtime, caller: Caller, occasion_id: str, connection_id: str, run_id: str) -> str:
    """Try a run that waits to retry at once; returns its id (409 unless it is waiting to retry)."""
    if not is_id(connection_id) or not is_id(run_id):
        with rt.db.read() as session:
            authorize(session, caller, MANAGE, occasion_id)
        raise NotFound("No such sync run.")
    return syncs.retry_now(rt, caller, occasion_id, connection_id, run_id)
