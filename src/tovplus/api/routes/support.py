"""Support routes: a connection's diagnostics download, the adapter kill switch (admins), and the
planner's "Needs attention" notices."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field, StrictStr

from tovplus.api.deps import CallerDep, RuntimeDep
from tovplus.api.schemas import Strict
from tovplus.services import notifications, support
from tovplus.services.auth import Caller, UserCaller, require_admin
from tovplus.services.notifications import NoticeModel

router = APIRouter(tags=["support"])
CONNECTION = "/v1/occasions/{occasion_id}/integrations/connections/{connection_id}"


def admin_only(caller: CallerDep) -> UserCaller:
    """403 for anyone but an admin, before the body is looked at."""
    return require_admin(caller)


AdminDep = Annotated[Caller, Depends(admin_only)]


class SuspendIn(Strict):
    reason: StrictStr = Field(max_length=2000)


class SuspendedOut(BaseModel):
    suspended: int


class ResumedOut(BaseModel):
    resumed: int


class NoticesOut(BaseModel):
    notices: list[NoticeModel]


@router.get(
    f"{CONNECTION}/diagnostics",
    responses={200: {"content": {"application/json": {}}, "description": "The diagnostics document"}},
)
def diagnostics(occasion_id: str, connection_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    """Everything support needs about one connection, nothing secret, as a file to download."""
    document = support.connection_diagnostics(rt, caller, occasion_id, connection_id)
    return Response(
        json.dumps(document, indent=2, sort_keys=True),
        media_type="application/json",
        headers={"content-disposition": f'attachment; filename="diagnostics-{connection_id}.json"'},
    )


@router.post("/v1/admin/integrations/{integration_key}/suspend", response_model=SuspendedOut)
def suspend(integration_key: str, body: SuspendIn, rt: RuntimeDep, caller: AdminDep) -> SuspendedOut:
    """Stop every enabled connection of the adapter: no syncs, actions or callbacks (admins only)."""
    return SuspendedOut(suspended=support.suspend_integration(rt, caller, integration_key, body.reason))


@router.post("/v1/admin/integrations/{integration_key}/resume", response_model=ResumedOut)
def resume(integration_key: str, rt: RuntimeDep, caller: AdminDep) -> ResumedOut:
    """Put back exactly the connections the suspension stopped (admins only)."""
    return ResumedOut(resumed=support.resume_integration(rt, caller, integration_key))


@router.get("/v1/occasions/{occasion_id}/notices", response_model=NoticesOut)
def notices(occasion_id: str, rt: RuntimeDep, caller: CallerDep) -> NoticesOut:
    """The occasion's notices not yet cleared ("Needs attention"), newest first."""
    return NoticesOut(notices=notifications.open_notices(rt, caller, occasion_id=occasion_id))


@router.post("/v1/occasions/{occasion_id}/notices/{notice_id}/dismiss", status_code=204)
def dismiss(occasion_id: str, notice_id: str, rt: RuntimeDep, caller: CallerDep) -> Response:
    """Clear one notice for every planner of the occasion."""
    notifications.dismiss(rt, caller, occasion_id, notice_id)
    return Response(status_code=204)
