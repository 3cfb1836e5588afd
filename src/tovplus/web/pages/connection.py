"""One connection's page: settings, state, key rotation, sync now, revocation; records and activity."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from tovplus.db.states import ConnectionState
from tovplus.errors import Conflict, FieldIssue, InvalidInput, status_for
from tovplus.services import connections
from tovplus.services import sync as syncs
from tovplus.services.activity import SHOW_CHOICES
from tovplus.services.connections import ConnectionPatch
from tovplus.web import forms, handoff, lookups
from tovplus.web.pages import sync_log
from tovplus.web.pages.action_panel import ActionForm, action_panel
from tovplus.web.pages.connection_oauth import allow_partner_form_target, panel_context
from tovplus.web.security import Flash
from tovplus.web.urls import connection_url, integrations_url
from tovplus.web.visit import FormDep, Readable, Visit, page, visit

router = APIRouter(include_in_schema=False)
RECORDS_PAGE_SIZE = 25
ACTIVITY_PAGE_SIZE = 20
_PATH = "/occasions/{occasion_id}/integrations/connections/{connection_id}"
_CHECK_TEXT_LIMIT = 600


def _stored_errors(view: Readable, adapter: dict[str, Any] | None) -> forms.FormErrors:
    """The stored validation errors, next to their inputs (without a message at the top)."""
    stored = [FieldIssue(e["field"], e["code"], e["message"]) for e in view["validation"]["errors"]]
    errors = forms.FormErrors.of("", stored, forms.input_names(adapter) if adapter else [])
    errors.message = None
    return errors


def _stored_values(view: Readable) -> dict[str, Any]:
    """The form's values from the stored config and action keys (never secrets)."""
    values: dict[str, Any] = {
        f"config.{k}": ("" if val is None else val) for k, val in view["config"].items()
    }
    values["action_keys"] = list(view["action_keys"])
    return values


def _detail(
    v: Visit,
    occasion_id: str,
    connection_id: str,
    *,
    values: dict[str, Any] | None = None,
    errors: forms.FormErrors | None = None,
    refused: ActionForm | None = None,
    status: int = 200,
) -> Response:
    """The connection's page; ``values``/``errors`` re-show the settings form, ``refused`` an action's."""
    user = v.signed_in
    q = v.request.query_params
    view = connections.get_connection(v.rt, user, occasion_id, connection_id)
    adapter_obj = v.rt.registry.find(view["integration_key"])
    adapter = adapter_obj.describe() if adapter_obj is not None else None
    records = connections.list_records(
        v.rt,
        user,
        occasion_id,
        connection_id,
        limit=RECORDS_PAGE_SIZE,
        cursor=q.get("records_cursor") or None,
        include_deleted=q.get("deleted") == "1",
    )
    show = q.get("show") if q.get("show") in SHOW_CHOICES else None
    activity = connections.occasion_activity(
        v.rt,
        user,
        occasion_id,
        connection_id=connection_id,
        limit=ACTIVITY_PAGE_SIZE,
        cursor=q.get("activity_cursor") or None,
        show=show,
    )
    log = sync_log.page_data(v.rt, user, view, adapter)
    issued_key = check = None
    if v.flash and v.flash.connection_id == connection_id:
        issued_key = v.flash.issued_key
        check = {"ok": v.flash.check_ok, "text": v.flash.check} if v.flash.check else None
    response = v.page(
        "connection.html",
        status=status,
        title=view["name"],
        occasion_id=occasion_id,
        occasion_name=lookups.occasion_name(v.rt, occasion_id),
        connection=view,
        adapter=adapter,
        records=records,
        activity=activity,
        actors=lookups.actor_names(v.rt, [a["actor"] for a in activity.items]),
        sync_log=log,
        action_panel=action_panel(v, view, refused),
        values=_stored_values(view) if values is None else values,
        errors=_stored_errors(view, adapter) if errors is None else errors,
        issued_key=issued_key,
        check=check,
        base=integrations_url(occasion_id),
        url=connection_url(occasion_id, connection_id),
        records_cursor=q.get("records_cursor"),
        show_deleted=q.get("deleted") == "1",
        activity_cursor=q.get("activity_cursor"),
        show=show,
        **handoff.connection_page_extras(v.rt, user, view, adapter, log.schedule),
        **panel_context(v, view),
    )
    return allow_partner_form_target(v, view, response)


detail_page = _detail


@router.get(_PATH)
@page
def connection_detail(request: Request, occasion_id: str, connection_id: str) -> Response:
    """The connection's page."""
    return _detail(visit(request), occasion_id, connection_id)


@router.post(_PATH + "/settings")
@page
def save_settings(request: Request, occasion_id: str, connection_id: str, form: FormDep) -> Response:
    """Save config, secrets and granted actions; field errors are shown on the form."""
    v = visit(request)
    user = v.signed_in
    v.check_csrf(form)
    view = connections.get_connection(v.rt, user, occasion_id, connection_id)
    adapter_obj = v.rt.registry.find(view["integration_key"])
    if adapter_obj is None:
        raise Conflict("This integration is not installed any more, so its settings cannot be changed.")
    adapter = adapter_obj.describe()
    try:
        connections.update_connection(v.rt, user, occasion_id, connection_id, forms.edit_input(form, adapter))
    except (InvalidInput, Conflict) as exc:
        if not exc.fields:
            return v.redirect(connection_url(occasion_id, connection_id), Flash(error=exc.message))
        return _detail(
            v,
            occasion_id,
            connection_id,
            values=forms.echoed(form, adapter),
            errors=forms.FormErrors.of(
                f"{exc.message} Nothing was saved.", exc.fields, forms.input_names(adapter)
            ),
            status=status_for(exc),
        )
    return v.redirect(connection_url(occasion_id, connection_id), Flash(notice="Settings saved."))


_STATE_NOTICES = {
    ConnectionState.ENABLED: "Enabled. The integration can now use its key.",
    ConnectionState.DISABLED: "Disabled. The integration's key is refused until you enable it again.",
    ConnectionState.REVOKED: "Revoked. Its key no longer works and its stored secrets were destroyed.",
}


def _change(
    request: Request,
    occasion_id: str,
    connection_id: str,
    form: FormData,
    patch: ConnectionPatch,
    notice: str,
) -> Response:
    v = visit(request)
    user = v.signed_in
    v.check_csrf(form)
    url = connection_url(occasion_id, connection_id)
    try:
        result = connections.update_connection(v.rt, user, occasion_id, connection_id, patch)
    except Conflict as exc:
        return v.redirect(url, Flash(error=exc.message))
    return v.redirect(url, Flash(notice=notice, issued_key=result.issued_key, connection_id=connection_id))


@router.post(_PATH + "/state")
@page
def change_state(request: Request, occasion_id: str, connection_id: str, form: FormDep) -> Response:
    """Enable or disable the connection."""
    target = forms.text(form, "state")
    if target not in (ConnectionState.ENABLED, ConnectionState.DISABLED):
        raise InvalidInput("Choose enable or disable.", fields=[FieldIssue("state", "invalid", "")])
    state = ConnectionState(target)
    return _change(
        request, occasion_id, connection_id, form, ConnectionPatch(state=state), _STATE_NOTICES[state]
    )


@router.post(_PATH + "/revoke")
@page
def revoke(request: Request, occasion_id: str, connection_id: str, form: FormDep) -> Response:
    """Revoke the connection for good, once its label (else its name) has been typed to confirm."""
    v = visit(request)
    v.check_csrf(form)
    view = connections.get_connection(v.rt, v.signed_in, occasion_id, connection_id)
    expected = view.label or view.name
    if forms.text(form, "confirm").strip().casefold() != expected.casefold():
        what = "label" if view.label else "name"
        message = f"Nothing was revoked: type the connection's {what}, {expected}, to confirm."
        return v.redirect(connection_url(occasion_id, connection_id), Flash(error=message))
    revoked = ConnectionState.REVOKED
    return _change(
        request, occasion_id, connection_id, form, ConnectionPatch(state=revoked), _STATE_NOTICES[revoked]
    )


@router.post(_PATH + "/rotate")
@page
def rotate(request: Request, occasion_id: str, connection_id: str, form: FormDep) -> Response:
    """Issue a new key (shown once on the next page); the old one stops working."""
    return _change(
        request,
        occasion_id,
        connection_id,
        form,
        ConnectionPatch(rotate_key=True),
        "A new key was issued. The old key stopped working just now.",
    )


@router.post(_PATH + "/check")
@page
def check_connection(request: Request, occasion_id: str, connection_id: str, form: FormDep) -> Response:
    """The "Test connection" button: ask the partner whether the stored credentials work; the
    result is shown next to the button."""
    v = visit(request)
    v.check_csrf(form)
    url = connection_url(occasion_id, connection_id)
    try:
        outcome = connections.check_connection(v.rt, v.signed_in, occasion_id, connection_id)
    except Conflict as exc:
        return v.redirect(url, Flash(error=exc.message))
    if outcome.ok:
        text = (
            f"Works — {outcome.summary}."
            if outcome.summary
            else "Works — the partner accepted the credentials."
        )
    else:
        text = "Did not work: " + " ".join(outcome.problems)
    if len(text) > _CHECK_TEXT_LIMIT:  # the flash cookie has room for a few sentences, not a page
        text = text[: _CHECK_TEXT_LIMIT - 1] + "…"
    return v.redirect(
        url + "#settings-title", Flash(connection_id=connection_id, check=text, check_ok=outcome.ok)
    )


@router.post(_PATH + "/sync")
@page
def sync_now(request: Request, occasion_id: str, connection_id: str, form: FormDep) -> Response:
    """Queue a sync of the connection (``full=1``: everything again, deletions detected)."""
    v = visit(request)
    user = v.signed_in
    v.check_csrf(form)
    url = connection_url(occasion_id, connection_id)
    full = forms.text(form, "full") == "1"
    try:
        syncs.request_sync(v.rt, user, occasion_id, connection_id, full=full)
    except Conflict as exc:
        return v.redirect(url, Flash(error=exc.message))
    what = "Full sync" if full else "Sync"
    return v.redirect(
        url, Flash(notice=f"{what} queued. It starts in a moment; this page updates by itself.")
    )
