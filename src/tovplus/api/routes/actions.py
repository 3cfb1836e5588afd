"""Actions on a connection: run one, and read its runs (the contract's "Actions" part)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, Security
from pydantic import BaseModel, Field, StrictStr

from tovplus.api.deps import CallerDep, RuntimeDep
from tovplus.api.schemas import BEARER, CursorQuery, LimitQuery, Strict
from tovplus.services import actions
from tovplus.services.actions import ActionRunModel

router = APIRouter(
    prefix="/v1/occasions/{occasion_id}/integrations/connections/{connection_id}",
    tags=["actions"],
    dependencies=[Security(BEARER)],
)


class ActionRequestIn(Strict):
    input: dict[str, Any] = Field(default_factory=dict, max_length=100)
    #: The same key on the same connection again is the same run, with no second effect.
    idempotency_key: StrictStr | None = Field(default=None, min_length=1, max_length=200)


class ActionRunOut(BaseModel):
    action_run: ActionRunModel


class ActionRunsOut(BaseModel):
    action_runs: list[ActionRunModel]
    next_cursor: str | None


@router.post(
    "/actions/{action_key}",
    status_code=202,
    response_model=ActionRunOut,
    responses={200: {"model": ActionRunOut, "description": "The run an earlier request with this key made"}},
)
def run_action(
    occasion_id: str,
    connection_id: str,
    action_key: str,
    body: ActionRequestIn,
    response: Response,
    rt: RuntimeDep,
    caller: CallerDep,
) -> ActionRunOut:
    """Queue a run of the action (202); the same ``idempotency_key`` again answers 200 with that run."""
    requested = actions.request_action(
        rt, caller, occasion_id, connection_id, action_key, body.input, idempotency_key=body.idempotency_key
    )
    if not requested.created:
        response.status_code = 200
    return ActionRunOut(action_run=requested.run)


@router.get("/action-runs", response_model=ActionRunsOut)
def list_action_runs(
    occasion_id: str,
    connection_id: str,
    rt: RuntimeDep,
    caller: CallerDep,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
) -> ActionRunsOut:
    """The connection's action runs, newest first."""
    page = actions.list_runs(rt, caller, occasion_id, connection_id, limit=limit, cursor=cursor)
    return ActionRunsOut(action_runs=page.items, next_cursor=page.next_cursor)


@router.get("/action-runs/{action_run_id}", response_model=ActionRunOut)
def get_action_run(
    occasion_id: str, connection_id: str, action_run_id: str, rt: RuntimeDep, caller: CallerDep
) -> ActionRunOut:
    """One action run of the connection."""
    return ActionRunOut(action_run=actions.get_run(rt, caller, occasion_id, connection_id, action_run_id))
