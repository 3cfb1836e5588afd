"""A connection's sync run history and "Retry now", for the API and the connection page."""

from __future__ import annotations

from tovplus.errors import NotFound
from tovplus.runtime import Runtime
from tovplus.runtime.pagination import Page
from tovplus.services import sync as syncs
from tovplus.services.auth import MANAGE, Caller, authorize, is_id
from tovplus.services.connections import store
from tovplus.services.sync import SyncRunModel


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


def retry_run_now(rt: Runtime, caller: Caller, occasion_id: str, connection_id: str, run_id: str) -> str:
    """Try a run that waits to retry at once; returns its id (409 unless it is waiting to retry)."""
    if not is_id(connection_id) or not is_id(run_id):
        with rt.db.read() as session:
            authorize(session, caller, MANAGE, occasion_id)
        raise NotFound("No such sync run.")
    return syncs.retry_now(rt, caller, occasion_id, connection_id, run_id)
