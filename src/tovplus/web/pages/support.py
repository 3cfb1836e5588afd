"""Support on the pages: a connection's diagnostics download and its suspension banner's data,
the admin's count of failing webhook endpoints, and the admin's kill switch (a form per adapter
to suspend, with a reason, and to resume; the same services as ``POST /v1/admin/integrations/
{key}/suspend|resume``)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from tovplus.errors import InvalidInput
from tovplus.services import support, webhooks
from tovplus.web import forms
from tovplus.web.security import Flash
from tovplus.web.visit import FormDep, Visit, page, visit

router = APIRouter(include_in_schema=False)


@router.get("/occasions/{occasion_id}/integrations/connections/{connection_id}/diagnostics")
@page
def diagnostics(request: Request, occasion_id: str, connection_id: str) -> Response:
    """The connection's diagnostics file (planners of the occasion, admins)."""
    v = visit(request)
    document = support.connection_diagnostics(v.rt, v.signed_in, occasion_id, connection_id)
    return Response(
        json.dumps(document, indent=2, sort_keys=True),
        media_type="application/json",
        headers={"content-disposition": f'attachment; filename="diagnostics-{connection_id}.json"'},
    )


def admin_counts(v: Visit) -> dict[str, Any]:
    """What the admin page adds: the failing webhook endpoints, and each adapter's kill switch."""
    return {
        "failing_endpoints": webhooks.failing_endpoint_count(v.rt, v.signed_in),
        "kill_switches": support.suspension_overview(v.rt, v.signed_in),
        "suspend_reason_max": support.MAX_REASON_CHARS,
    }


_KILL_SWITCH = "/admin/integrations#kill-switch"


def _name(v: Visit, integration_key: str) -> str:
    adapter = v.rt.registry.find(integration_key) if len(integration_key) <= 64 else None
    return adapter.name if adapter is not None else integration_key


def _connections(count: int) -> str:
    return f"{count} connection{'' if count == 1 else 's'}"


@router.post("/admin/integrations/{integration_key}/suspend")
@page
def suspend(request: Request, integration_key: str, form: FormDep) -> Response:
    """Suspend every enabled connection of the adapter, with the reason typed."""
    v = visit(request)
    v.check_csrf(form)
    try:
        count = support.suspend_integration(v.rt, v.signed_in, integration_key, forms.text(form, "reason"))
    except InvalidInput as exc:
        return v.redirect(_KILL_SWITCH, Flash(error=f"{exc.message} Nothing was suspended."))
    name = _name(v, integration_key)
    if count == 0:
        return v.redirect(_KILL_SWITCH, Flash(notice=f"{name}: no running connection to suspend."))
    notice = (
        f"{name}: {_connections(count)} suspended. "
        "Nothing of theirs syncs, acts or accepts callbacks until resumed."
    )
    return v.redirect(_KILL_SWITCH, Flash(notice=notice))


@router.post("/admin/integrations/{integration_key}/resume")
@page
def resume(request: Request, integration_key: str, form: FormDep) -> Response:
    """Resume exactly the connections of the adapter that were suspended."""
    v = visit(request)
    v.check_csrf(form)
    count = support.resume_integration(v.rt, v.signed_in, integration_key)
    name = _name(v, integration_key)
    notice = f"{name}: {_connections(count)} resumed." if count else f"{name}: nothing was suspended."
    return v.redirect(_KILL_SWITCH, Flash(notice=notice))
