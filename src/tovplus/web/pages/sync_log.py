"""The connection page's sync part: the run log, what happens next, and "Retry now"."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from tovplus.db.states import ConnectionState, SyncRunShownState
from tovplus.errors import Conflict, NotFound
from tovplus.runtime import Runtime
from tovplus.services import connections
from tovplus.services.auth import UserCaller
from tovplus.services.connections import SyncScheduleModel
from tovplus.web.security import Flash
from tovplus.web.times import when
from tovplus.web.urls import connection_url
from tovplus.web.visit import FormDep, page, visit

router = APIRouter(include_in_schema=False)
_PATH = "/occasions/{occasion_id}/integrations/connections/{connection_id}"
#: How each shown run state reads on the page.
RUN_STATE_WORDS: dict[str, str] = {
    SyncRunShownState.QUEUED: "Queued",
    SyncRunShownState.RUNNING: "Running",
    SyncRunShownState.RETRY_SCHEDULED: "Waiting to retry",
    SyncRunShownState.SUCCEEDED: "Succeeded",
    SyncRunShownState.FAILED: "Failed",
}
TRIGGER_WORDS: dict[str, str] = {
    "schedule": "scheduled",
    "manual": "started by hand",
    "full": "full resync",
    "event": "on an event",
}


@dataclass(frozen=True, slots=True)
class SyncLogPage:
    """What ``connection/_sync_log.html`` and the health panel read."""

    schedule: SyncScheduleModel
    #: What happens next, in one sentence (``None``: nothing to say).
    step: str | None
    state_words: Mapping[str, str] = field(default_factory=lambda: RUN_STATE_WORDS)
    trigger_words: Mapping[str, str] = field(default_factory=lambda: TRIGGER_WORDS)


def page_data(rt: Runtime, user: UserCaller, view: Any, adapter: dict[str, Any] | None) -> SyncLogPage:
    """The run log, the schedule and the next step of the connection ``view`` (already authorized)."""
    schedule = connections.sync_schedule(rt, user, view["occasion_id"], view["id"])
    return SyncLogPage(schedule, next_step(view, adapter, schedule))


def next_step(c: Any, adapter: dict[str, Any] | None, log: SyncScheduleModel) -> str | None:
    """What will happen next with this connection, in one sentence (``None``: nothing to say)."""
    if adapter is None or c["state"] == ConnectionState.REVOKED:
        return None
    name, syncs = adapter["name"], adapter["supports_background_sync"]
    if c["state"] == ConnectionState.DRAFT:
        if syncs:
            return "Once you enable it, its first sync runs at once."
        return f"Once you enable it, give {name} its key so it can send updates."
    if c["state"] != ConnectionState.ENABLED:
        return None
    if not syncs:
        return f"{name} sends its updates to TOV Plus when something changes; there is no schedule."
    return _sync_step(log)


def _sync_step(log: SyncScheduleModel) -> str:
    run = log.active_run
    if log.paused_at is not None:
        return (
            f"Scheduled syncs are paused after {log.failures_in_row} failed syncs in a row. "
            "Press “Sync now” to resume them."
        )
    if run is not None and run.state == SyncRunShownState.RETRY_SCHEDULED.value:
        return f"Retrying by itself: attempt {run.attempts + 1} at {when(run.next_attempt_at)}."
    if run is not None and run.state == SyncRunShownState.RUNNING.value:
        return "Syncing now."
    if run is not None:
        return "A sync is queued and starts in a moment."
    if not log.runs:
        return "The first sync is queued and runs in a moment."
    return f"Next sync {when(log.next_sync_at)}." if log.next_sync_at else "No sync is scheduled."


@router.post(_PATH + "/sync-runs/{run_id}/retry")
@page
def retry_now(request: Request, occasion_id: str, connection_id: str, run_id: str, form: FormDep) -> Response:
    """Try a run that waits to retry at once."""
    v = visit(request)
    v.check_csrf(form)
    url = connection_url(occasion_id, connection_id)
    try:
        connections.retry_run_now(v.rt, v.signed_in, occasion_id, connection_id, run_id)
    except (Conflict, NotFound) as exc:
        return v.redirect(url, Flash(error=exc.message))
    return v.redirect(url, Flash(notice="Retrying now. The result shows here in a moment."))
