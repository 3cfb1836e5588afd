"""Admin routes: every connection on the platform, summary counts, the support feed."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Security

from tovplus.api.deps import CallerDep, RuntimeDep
from tovplus.api.schemas import BEARER, ActivityPageOut, AdminConnectionsOut
from tovplus.services import connections
from tovplus.services.auth import Caller, UserCaller, require_admin


def admin_only(caller: CallerDep) -> UserCaller:
    """403 for anyone but an admin, before any query parameter is looked at."""
    return require_admin(caller)


AdminDep = Annotated[Caller, Depends(admin_only)]
router = APIRouter(prefix="/v1/admin/integrations", tags=["admin"], dependencies=[Security(BEARER)])
Limit = Annotated[int | None, Query(ge=1, le=200, description="Page size (default 50).")]
Cursor = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")]
StateFilter = Annotated[Literal["draft", "enabled", "disabled", "revoked"] | None, Query()]
HealthFilter = Annotated[Literal["unknown", "healthy", "degraded", "failing"] | None, Query()]
KeyFilter = Annotated[str | None, Query(max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$")]
IdFilter = Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9_-]{1,40}$")]
KindFilter = Annotated[
    str | None,
    Query(max_length=64, pattern=r"^[a-z][a-z0-9_.]{0,63}$", description="e.g. `connection.enabled`"),
]


@router.get("", response_model=AdminConnectionsOut)
def list_connections(
    rt: RuntimeDep,
    caller: AdminDep,
    state: StateFilter = None,
    health: HealthFilter = None,
    integration_key: KeyFilter = None,
    occasion_id: IdFilter = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Every connection on the platform, newest first, with summary counts (admins only)."""
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
    rt: RuntimeDep, caller: AdminDep, kind: KindFilter = None, limit: Limit = None, cursor: Cursor = None
) -> dict[str, Any]:
    """The platform-wide activity feed, newest first (admins only)."""
    page = connections.admin_activity(rt, caller, kind=kind, limit=limit, cursor=cursor)
    return {"activity": page.items, "next_cursor": page.next_cursor}
