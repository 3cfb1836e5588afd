"""Admin routes: every connection on the platform, summary counts, the support feed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Security

from tovplus.api.deps import CallerDep, RuntimeDep
from tovplus.api.responses import ModelJSONResponse, model_json
from tovplus.api.schemas import (
    BEARER,
    ActivityPageOut,
    AdminConnectionsOut,
    CursorQuery,
    HealthQuery,
    IntegrationKeyQuery,
    KindQuery,
    LimitQuery,
    OccasionIdQuery,
    OccasionSearchQuery,
    SearchQuery,
    SortQuery,
    StateQuery,
)
from tovplus.services import connections
from tovplus.services.auth import Caller, UserCaller, require_admin


async def admin_only(caller: CallerDep) -> UserCaller:
    """403 for anyone but an admin, before any query parameter is looked at (no I/O: on the loop)."""
    return require_admin(caller)


AdminDep = Annotated[Caller, Depends(admin_only)]
router = APIRouter(prefix="/v1/admin/integrations", tags=["admin"], dependencies=[Security(BEARER)])


@router.get("", response_model=AdminConnectionsOut)
def list_connections(
    rt: RuntimeDep,
    caller: AdminDep,
    state: StateQuery = None,
    health: HealthQuery = None,
    integration_key: IntegrationKeyQuery = None,
    occasion_id: OccasionIdQuery = None,
    q: SearchQuery = None,
    occasion: OccasionSearchQuery = None,
    sort: SortQuery = None,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
) -> ModelJSONResponse:
    """Every connection on the platform (newest first unless ``sort``), with summary counts (admins only)."""
    page, summary = connections.admin_list(
        rt,
        caller,
        connections.AdminFilters(state, health, integration_key, occasion_id, q, occasion, sort),
        limit=limit,
        cursor=cursor,
    )
    return model_json(
        AdminConnectionsOut(connections=page.items, summary=summary, next_cursor=page.next_cursor)
    )


@router.get("/activity", response_model=ActivityPageOut)
def activity_feed(
    rt: RuntimeDep,
    caller: AdminDep,
    kind: KindQuery = None,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
) -> ActivityPageOut:
    """The platform-wide activity feed, newest first (admins only)."""
    page = connections.admin_activity(rt, caller, kind=kind, limit=limit, cursor=cursor)
    return ActivityPageOut(activity=page.items, next_cursor=page.next_cursor)
