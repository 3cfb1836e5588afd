"""A connection's sync run history (``GET …/sync-runs``) and "Retry now" on a waiting run."""

from __future__ import annotations

from fastapi import APIRouter, Security
from pydantic import BaseModel

from tovplus.api.deps import CallerDep, RuntimeDep
from tovplus.api.schemas import BEARER, CursorQuery, LimitQuery, SyncRequestedOut
from tovplus.services import connections
from tovplus.services.sync import SyncRunModel

router = APIRouter(
    prefix="/v1/occasions/{occasion_id}/integrations/connections/{connection_id}",
    tags=["connections"],
    dependencies=[Security(BEARER)],
)


class SyncRunsOut(BaseModel):
    sync_runs: list[SyncRunModel]
    next_cursor: str | None


@router.get("/sync-runs", response_model=SyncRunsOut)
def sync_runs(
    occasion_id: str,
    connection_id: str,
    rt: RuntimeDep,
    caller: CallerDep,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
) -> SyncRunsOut:
    """The connection's sync runs, newest first (a run waiting to retry is ``retry_scheduled``)."""
    page = connections.connection_sync_runs(
        rt, caller, occasion_id, connection_id, limit=limit, cursor=cursor
    )
    return SyncRunsOut(sync_runs=page.items, next_cursor=page.next_cursor)


@router.post("/sync-runs/{sync_run_id}/retry", status_code=202, response_model=SyncRequestedOut)
def retry(
    occasion_id: str, connection_id: str, sync_run_id: str, rt: RuntimeDep, caller: CallerDep
) -> SyncRequestedOut:
    """Try a run that waits to retry now (409 ``not_retry_scheduled`` for any other run)."""
    return SyncRequestedOut(
        sync_run_id=connections.retry_run_now(rt, caller, occasion_id, connection_id, sync_run_id)
    )
