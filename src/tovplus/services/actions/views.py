"""The contract's ``ActionRun`` view, shared by the API and the pages, and reading runs."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import select

from tovplus.db.models import ActionRun, Connection
from tovplus.errors import NotFound
from tovplus.integrations.payloads import format_timestamp
from tovplus.runtime import Runtime
from tovplus.runtime.pagination import Page, page_of, paginate
from tovplus.runtime.views import View
from tovplus.services.auth import Caller, authorize

RunStateName = Literal["queued", "running", "succeeded", "failed"]


class ActionRunModel(View):
    """One run of an action: what was asked, by whom or what, and how it ended."""

    id: str
    connection_id: str
    action_key: str
    state: RunStateName
    #: ``user:<id>`` or ``event:<platform event type>``.
    trigger: str
    attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    #: Milliseconds from the first attempt's start to the end (null until final).
    duration_ms: int | None
    next_attempt_at: str | None
    summary: str | None
    error: str | None
    input: dict[str, Any]
    idempotency_key: str | None


def run_view(run: ActionRun) -> ActionRunModel:
    """The view of one run row."""
    duration = None
    if run.finished_at is not None and run.started_at is not None:
        duration = max(0, int((run.finished_at - run.started_at).total_seconds() * 1000))
    waiting = run.state == "queued" and run.attempt > 0
    return ActionRunModel(
        id=run.id,
        connection_id=run.connection_id,
        action_key=run.action_key,
        state=run.state,  # type: ignore[arg-type]
        trigger=run.trigger,
        attempts=run.attempt,
        created_at=format_timestamp(run.created_at),
        started_at=format_timestamp(run.started_at) if run.started_at else None,
        finished_at=format_timestamp(run.finished_at) if run.finished_at else None,
        duration_ms=duration,
        next_attempt_at=format_timestamp(run.next_attempt_at) if waiting and run.next_attempt_at else None,
        summary=run.summary,
        error=run.error,
        input=dict(run.input or {}),
        idempotency_key=run.idempotency_key,
    )


def _visible_connection(rt: Runtime, caller: Caller, occasion_id: str, connection_id: str) -> None:
    with rt.db.read() as session:
        authorize(session, caller, "occasion.manage", occasion_id)
        row = session.get(Connection, connection_id) if len(connection_id) <= 40 else None
        if row is None or row.occasion_id != occasion_id:
            raise NotFound("No such connection.")


def list_runs(
    rt: Runtime,
    caller: Caller,
    occasion_id: str,
    connection_id: str,
    *,
    limit: int | None = None,
    cursor: str | None = None,
) -> Page[ActionRunModel]:
    """The connection's action runs, newest first."""
    _visible_connection(rt, caller, occasion_id, connection_id)
    with rt.db.read() as session:
        query, size = paginate(
            select(ActionRun).where(ActionRun.connection_id == connection_id),
            ActionRun.id,
            limit=limit,
            cursor=cursor,
            newest_first=True,
        )
        page = page_of(session.scalars(query).all(), size, lambda r: r.id)
        return Page([run_view(r) for r in page.items], page.next_cursor)


def get_run(rt: Runtime, caller: Caller, occasion_id: str, connection_id: str, run_id: str) -> ActionRunModel:
    """One action run of the connection."""
    _visible_connection(rt, caller, occasion_id, connection_id)
    with rt.db.read() as session:
        run = session.get(ActionRun, run_id) if len(run_id) <= 40 else None
        if run is None or run.connection_id != connection_id:
            raise NotFound("No such action run.")
        return run_view(run)
