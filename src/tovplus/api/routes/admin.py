"""Admin routes: every connection on the platform, summary counts, the support feed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from tovplus.api.deps import CallerDep, RuntimeDep
from tovplus.api.schemas import ActivityPageOut, AdminConnectionsOut
from tovplus.services import connections

router = APIRouter(prefix="/v1/admin/integrations", tags=["admin"])
Limit = Annotated[int | None, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200)]
Filter = Annotated[str | None, Query(max_length=64)]


@router.get("", response_model=AdminConnectionsOut)
def list_connections(
    rt: RuntimeDep,
    caller: CallerDep,
    state: Filter = None,
    health: Filter = None,
    integration_key: Filter = None,
    occasion_id: Filter = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> dict[str, Any]:
    page, summary = connections.admin_list(
        rt,
        caller,
        connections.AdminFilters(state, health, integration_key, occasion_id),
        limit=limit,
        cursor=cursor,
    )
    return {"connections": page.items, "summary": summary, "next_cursor": page.next_cursor}


@router.get("/activity", response_model=ActivityPageOut)
def activity_feed(
    rt: RuntimeDep, caller: CallerDep, kind: Filter = None, limit: Limit = None, cursor: Cursor = None
) -> dict[str, Any]:
    page = connections.admin_activity(rt, caller, kind=kind, limit=limit, cursor=cursor)
    return {"activity": page.items, "next_cursor": page.next_cursor}
