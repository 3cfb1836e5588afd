"""The connection page's actions section, its routes: a button (and small form) per action, and
the run list with live state (a short poll of :func:`action_runs_json`, by
``static/action_runs.js``); the section's data is ``action_panel``.

Invalid input re-shows the page (422) with the field errors next to that action's inputs and what
was typed back in them, as the settings and create forms do."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, Response

from tovplus.errors import Conflict, InvalidInput, NotFound, status_for
from tovplus.services import actions, connections
from tovplus.services.catalog import ActionSpecModel, adapter_view
from tovplus.web import forms
from tovplus.web.pages import connection
from tovplus.web.pages.action_panel import ActionForm, action_panel
from tovplus.web.security import Flash
from tovplus.web.urls import connection_url
from tovplus.web.visit import FormDep, Visit, page, visit

router = APIRouter(include_in_schema=False)
_PATH = "/occasions/{occasion_id}/integrations/connections/{connection_id}"


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


def _typed(form: FormData, spec: ActionSpecModel) -> dict[str, Any]:
    """What was typed into the action's inputs, as the form shows it again."""
    values: dict[str, Any] = {}
    for f in spec.input_fields:
        name = f"input.{f.key}"
        values[name] = form.get(name) == "true" if f.type == "boolean" else forms.text(form, name)
    return values


def _refused(
    v: Visit, form: FormData, spec: ActionSpecModel, exc: InvalidInput, occasion_id: str, connection_id: str
) -> Response:
    """The page again (422), the action's form holding what was typed and its field errors."""
    known = [f"input.{f.key}" for f in spec.input_fields]
    errors = forms.FormErrors.of(f"{exc.message} Nothing was sent.", exc.fields, known)
    refused = ActionForm(spec.key, _typed(form, spec), errors)
    return connection.detail_page(v, occasion_id, connection_id, refused=refused, status=status_for(exc))


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
        if exc.fields:
            return _refused(v, form, spec, exc, occasion_id, connection_id)
        return v.redirect(url + "#actions", Flash(error=f"{exc.message} Nothing was sent."))
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
