"""The connection page's actions section: a button (and small form) per action, and the run list
with live state (a short poll of :func:`action_runs_json`, by ``static/action_runs.js``)."""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, Response

from tovplus.errors import Conflict, InvalidInput, NotFound
from tovplus.services import actions, connections
from tovplus.services.actions import ActionRunModel
from tovplus.services.catalog import ActionSpecModel, adapter_view
from tovplus.web import lookups
from tovplus.web.security import Flash
from tovplus.web.urls import connection_url
from tovplus.web.visit import FormDep, Readable, Visit, page, visit

router = APIRouter(include_in_schema=False)
RUNS_SHOWN = 10
_PATH = "/occasions/{occasion_id}/integrations/connections/{connection_id}"
_STATES = {"queued": "Waiting", "running": "Running", "succeeded": "Succeeded", "failed": "Failed"}
_EVENTS = {"guest.created": "a guest was added", "guest.updated": "a guest was changed"}


@dataclass(frozen=True, slots=True)
class RunLine:
    """One run as the page says it, in words."""

    id: str
    state: str
    state_label: str
    label: str
    trigger: str
    when: str
    attempts: int
    outcome: str | None
    failed: bool


@dataclass(frozen=True, slots=True)
class ActionPanel:
    """What the actions partial shows."""

    specs: list[ActionSpecModel]
    runs: list[RunLine]
    active: bool
    poll_url: str
    missing: dict[str, list[str]]
    #: Sent with each form as its idempotency key: a form sent twice queues one run.
    form_key: str


def _trigger(trigger: str, names: dict[str, str]) -> str:
    if trigger.startswith("event:"):
        event = trigger.removeprefix("event:")
        return "By itself: " + _EVENTS.get(event, event)
    return "Asked by " + names.get(trigger, trigger)


def _line(run: ActionRunModel, labels: dict[str, str], names: dict[str, str]) -> RunLine:
    outcome = run.error if run.state == "failed" else run.summary
    if run.state == "queued" and run.error:
        outcome = f"Attempt {run.attempts} failed: {run.error} Trying again soon."
    return RunLine(
        id=run.id,
        state=run.state,
        state_label=_STATES.get(run.state, run.state),
        label=labels.get(run.action_key, run.action_key),
        trigger=_trigger(run.trigger, names),
        when=run.finished_at or run.started_at or run.created_at,
        attempts=run.attempts,
        outcome=outcome,
        failed=run.state == "failed",
    )


def action_panel(v: Visit, view: Readable) -> ActionPanel | None:
    """The section's data for a connection whose adapter has actions (``None`` otherwise)."""
    adapter = v.rt.registry.find(view["integration_key"])
    if adapter is None or not adapter.actions:
        return None
    occasion_id, connection_id = view["occasion_id"], view["id"]
    specs = list(adapter_view(adapter).actions)
    page_ = actions.list_runs(v.rt, v.signed_in, occasion_id, connection_id, limit=RUNS_SHOWN)
    names = lookups.actor_names(v.rt, [r.trigger for r in page_.items])
    labels = {s.key: s.label for s in specs}
    granted = {g["action_key"] for g in view["grants"]}
    return ActionPanel(
        specs=specs,
        runs=[_line(r, labels, names) for r in page_.items],
        active=any(r.state in ("queued", "running") for r in page_.items),
        poll_url=connection_url(occasion_id, connection_id) + "/action-runs.json",
        missing={s.key: [k for k in s.requires if k not in granted] for s in specs},
        form_key="page-" + secrets.token_urlsafe(12),
    )


def _input(form: FormData, spec: ActionSpecModel) -> dict[str, Any]:
    """The action's input from the form (``input.<key>``); blank fields are left out."""
    values: dict[str, Any] = {}
    for f in spec.input_fields:
        raw = form.get(f"input.{f.key}")
        if f.type == "boolean":
            if form.get(f"input.{f.key}.present") is not None:
                values[f.key] = raw == "true"
            continue
        if not isinstance(raw, str) or not raw.strip():
            continue
        if f.type == "integer":
            try:
                values[f.key] = int(raw.strip())
            except ValueError:
                values[f.key] = raw
            continue
        if f.type == "string_list":  # one value a line or comma-separated
            values[f.key] = [item.strip() for item in re.split(r"[,\n]", raw) if item.strip()]
            continue
        values[f.key] = raw
    return values


@router.post(_PATH + "/actions/{action_key}")
@page
def run_action(
    request: Request, occasion_id: str, connection_id: str, action_key: str, form: FormDep
) -> Response:
    """Queue a run of the action; the page shows it in the run list at once."""
    v = visit(request)
    user = v.signed_in
    v.check_csrf(form)
    url = connection_url(occasion_id, connection_id)
    view = connections.get_connection(v.rt, user, occasion_id, connection_id)
    adapter = v.rt.registry.find(view.integration_key)
    specs = adapter_view(adapter).actions if adapter is not None else []
    spec = next((s for s in specs if s.key == action_key), None)
    if spec is None:
        raise NotFound("This integration has no such action.")
    try:
        requested = actions.request_action(
            v.rt,
            user,
            occasion_id,
            connection_id,
            action_key,
            _input(form, spec),
            idempotency_key=str(form.get("idempotency_key") or "") or None,
        )
    except InvalidInput as exc:
        problems = " ".join(f.message for f in exc.fields)
        return v.redirect(url + "#actions", Flash(error=f"{exc.message} {problems} Nothing was sent."))
    except Conflict as exc:
        return v.redirect(url + "#actions", Flash(error=exc.message))
    notice = f"{spec.label}: queued. It runs in the background; its result appears below."
    if not requested.created:
        notice = f"{spec.label} was already asked for with this form; nothing was sent twice."
    return v.redirect(url + "#actions", Flash(notice=notice))


@router.get(_PATH + "/action-runs.json")
@page
def action_runs_json(request: Request, occasion_id: str, connection_id: str) -> Response:
    """The latest runs, in words, for the page's short poll."""
    v = visit(request)
    panel = action_panel(v, connections.get_connection(v.rt, v.signed_in, occasion_id, connection_id))
    runs = [asdict(line) for line in panel.runs] if panel else []
    return JSONResponse({"active": bool(panel and panel.active), "runs": runs})
