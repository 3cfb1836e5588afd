"""A connection's sync run history: the contract's ``SyncRun`` view, newest first.

One view (:class:`SyncRunModel`) for the API (``GET …/sync-runs``) and the connection page's
run log. A queued run that already failed an attempt shows as ``retry_scheduled``.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from tovplus.db.models import SyncRun
from tovplus.db.states import SyncRunShownState, SyncRunState
from tovplus.integrations.payloads import format_timestamp
from tovplus.runtime.pagination import Page, page_of, paginate
from tovplus.runtime.views import View


class SyncRunModel(View):
    """One sync run as the contract shows it (plus ``next_attempt_at`` and ``retry_reason``)."""

    id: str
    connection_id: str
    trigger: Literal["schedule", "manual", "full", "event"]
    state: Literal["queued", "running", "retry_scheduled", "succeeded", "failed"]
    attempts: int
    queued_at: str
    started_at: str | None
    finished_at: str | None
    duration_ms: int | None
    records_upserted: int
    records_deleted: int
    error: str | None
    #: When a ``retry_scheduled`` run tries again (null otherwise).
    next_attempt_at: str | None
    #: Why a ``retry_scheduled`` run waits, in words (null otherwise).
    retry_reason: str | None


def shown_state(run: SyncRun) -> SyncRunShownState:
    """The run's state as shown: a queued run with a failed attempt behind it is waiting to retry."""
    if run.state == SyncRunState.QUEUED and run.attempt > 0:
        return SyncRunShownState.RETRY_SCHEDULED
    return SyncRunShownState(run.state)


def sync_run_view(run: SyncRun) -> SyncRunModel:
    """The contract's ``SyncRun`` object for one row."""
    state = shown_state(run)
    waiting = state == SyncRunShownState.RETRY_SCHEDULED
    duration = None
    if run.started_at is not None and run.finished_at is not None:
        duration = max(0, int((run.finished_at - run.started_at).total_seconds() * 1000))
    return SyncRunModel(
        id=run.id,
        connection_id=run.connection_id,
        trigger=run.trigger,  # type: ignore[arg-type]  # stored values are the enum's
        state=state.value,
        attempts=run.attempt,
        queued_at=format_timestamp(run.created_at),
        started_at=format_timestamp(run.started_at) if run.started_at else None,
        finished_at=format_timestamp(run.finished_at) if run.finished_at else None,
        duration_ms=duration,
        records_upserted=run.records_written,
        records_deleted=run.records_deleted or 0,
        error=run.error,
        next_attempt_at=format_timestamp(run.next_attempt_at) if waiting and run.next_attempt_at else None,
        retry_reason=run.retry_reason if waiting else None,
    )


def list_sync_runs(
    session: Session, connection_id: str, *, limit: int | None, cursor: str | None
) -> Page[SyncRunModel]:
    """The connection's runs, newest first (the caller has authorized)."""
    query, size = paginate(
        select(SyncRun).where(SyncRun.connection_id == connection_id),
        SyncRun.id,
        limit=limit,
        cursor=cursor,
        newest_first=True,
    )
    page = page_of(session.scalars(query).all(), size, lambda r: r.id)
    return Page([sync_run_view(r) for r in page.items], page.next_cursor)
