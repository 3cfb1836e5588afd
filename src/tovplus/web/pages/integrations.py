"""The planner's page of an occasion: its connections and activity, and connecting a new partner."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from tovplus.db.states import ConnectionState
from tovplus.errors import Conflict, InvalidInput, NotFound, ValidationFailed, status_for
from tovplus.integrations.contract import Health
from tovplus.services import activity, connections, occasions
from tovplus.web import forms, lookups
from tovplus.web.pages import webhooks as webhook_pages
from tovplus.web.security import Flash
from tovplus.web.urls import connection_url, integrations_url
from tovplus.web.visit import FormDep, Readable, Visit, page, visit

router = APIRouter(include_in_schema=False)


#: The order of the planner's cards: what needs attention first.
_ATTENTION = {Health.FAILING: 0, Health.DEGRADED: 1}


def worst_first(items: Sequence[Readable]) -> tuple[list[Readable], list[Readable]]:
    """The live connections (failing, then degraded, then the rest; newest first within each)
    and the revoked ones (newest first), for the cards and the "Show revoked" fold."""
    newest = sorted(items, key=lambda c: str(c["id"]), reverse=True)
    live = [c for c in newest if c["state"] != ConnectionState.REVOKED]

    def rank(c: Readable) -> int:
        return _ATTENTION.get(c["health"], 2) if c["state"] == ConnectionState.ENABLED else 2

    revoked = [c for c in newest if c["state"] == ConnectionState.REVOKED]
    return sorted(live, key=rank), revoked


@router.get("/occasions/{occasion_id}/integrations")
@page
def integrations(request: Request, occasion_id: str) -> Response:
    """The occasion's integrations: the catalog, its connections, recent activity."""
    v = visit(request)
    overview = connections.occasion_overview(v.rt, v.signed_in, occasion_id)
    active, revoked = worst_first(overview["connections"])
    show = request.query_params.get("show")
    show = show if show in activity.SHOW_CHOICES else None
    recent = (
        connections.occasion_activity(
            v.rt,
            v.signed_in,
            occasion_id,
            connection_id=None,
            limit=activity.PLANNER_RECENT,
            cursor=None,
            show=show,
        ).items
        if show
        else overview["activity"]
    )
    return v.page(
        "integrations.html",
        title="Integrations",
        occasion_id=occasion_id,
        occasion_name=lookups.occasion_name(v.rt, occasion_id),
        catalog=overview["catalog"],
        connections=overview["connections"],
        active=active,
        revoked=revoked,
        activity=recent,
        actors=lookups.actor_names(v.rt, [a["actor"] for a in recent]),
        show=show,
        show_choices=activity.SHOW_CHOICES,
        time_zone=lookups.occasion_time_zone(v.rt, occasion_id),
        names={c["id"]: c["name"] for c in overview["connections"]},
        base=integrations_url(occasion_id),
        **webhook_pages.section(v, occasion_id),
    )


def _adapter_or_404(overview: Readable, integration_key: str) -> dict[str, Any]:
    for adapter in overview["catalog"]:
        if adapter["integration_key"] == integration_key:
            return dict(adapter)
    raise NotFound("No such integration.")


def _events(v: Visit, occasion_id: str) -> list[tuple[str, str]]:
    """``(id, name)`` of the occasion's events, for the scope choice."""
    with v.rt.db.read() as session:
        events = occasions.list_events(session, v.signed_in, occasion_id, limit=200, cursor=None)
        return [(e.id, e.name) for e in events.items]


def _new_form(
    v: Visit,
    occasion_id: str,
    adapter: dict[str, Any],
    *,
    values: dict[str, Any] | None = None,
    errors: forms.FormErrors | None = None,
    status: int = 200,
) -> Response:
    return v.page(
        "connection_new.html",
        status=status,
        title=f"Connect {adapter['name']}",
        occasion_id=occasion_id,
        occasion_name=lookups.occasion_name(v.rt, occasion_id),
        adapter=adapter,
        events=_events(v, occasion_id),
        values=values or {"action_keys": list(adapter["action_keys"]), "scope.type": "occasion"},
        errors=errors or forms.FormErrors(),
        base=integrations_url(occasion_id),
        time_zone=lookups.occasion_time_zone(v.rt, occasion_id),
    )


#: Beside a secret input the form shows again: what was typed there is not sent back to the browser.
RETYPE_SECRET = "For your safety this was not kept: type it again."  # noqa: S105 - a message


def _form_again(
    v: Visit, occasion_id: str, adapter: dict[str, Any], form: FormData, exc: InvalidInput | Conflict
) -> Response:
    """The create form again with the errors beside their fields, what was typed in it (never a
    secret) and, beside each secret that was typed, that it must be typed again."""
    errors = forms.FormErrors.of(f"{exc.message} Nothing was saved.", exc.fields, forms.input_names(adapter))
    for name in forms.typed_secrets(form, adapter):
        if name not in errors.by_field:  # a secret with its own error says what to type already
            errors.by_field[name] = [RETYPE_SECRET]
    return _new_form(
        v, occasion_id, adapter, values=forms.echoed(form, adapter), errors=errors, status=status_for(exc)
    )


@router.get("/occasions/{occasion_id}/integrations/new/{integration_key}")
@page
def new_connection(request: Request, occasion_id: str, integration_key: str) -> Response:
    """The form to connect one of the catalog's integrations."""
    v = visit(request)
    overview = connections.occasion_overview(v.rt, v.signed_in, occasion_id)
    return _new_form(v, occasion_id, _adapter_or_404(overview, integration_key))


@router.post("/occasions/{occasion_id}/integrations/new/{integration_key}")
@page
def create_connection(request: Request, occasion_id: str, integration_key: str, form: FormDep) -> Response:
    """Create the connection. Input errors show the form again (nothing saved, secrets to be typed
    again); a connection that cannot be enabled yet is kept as a draft with everything typed."""
    v = visit(request)
    user = v.signed_in
    v.check_csrf(form)
    overview = connections.occasion_overview(v.rt, user, occasion_id)
    adapter = _adapter_or_404(overview, integration_key)
    data = forms.create_input(form, adapter)
    kept = False
    try:
        try:
            result = connections.create_connection(v.rt, user, occasion_id, data)
        except ValidationFailed:
            # enabling was refused: keep everything typed (secrets encrypted) in a draft instead
            draft = dataclasses.replace(data, state=ConnectionState.DRAFT)
            result, kept = connections.create_connection(v.rt, user, occasion_id, draft), True
    except (InvalidInput, Conflict) as exc:
        return _form_again(v, occasion_id, adapter, form, exc)
    view = result.connection
    if kept:
        notice = (
            f"{adapter['name']} was saved as a draft, with everything you typed: it cannot be enabled "
            "until the fields marked below are fixed."
        )
        return v.redirect(
            connection_url(occasion_id, view["id"]),
            Flash(notice=notice, issued_key=result.issued_key, connection_id=view["id"]),
        )
    enabled = view["state"] == ConnectionState.ENABLED
    notice = (
        f"{adapter['name']} is connected and enabled."
        if enabled
        else f"{adapter['name']} was saved as a draft."
    )
    if not enabled and view["validation"]["errors"]:
        notice += " Fix the fields marked below, then enable it."
    return v.redirect(
        connection_url(occasion_id, view["id"]),
        Flash(notice=notice, issued_key=result.issued_key, connection_id=view["id"]),
    )
