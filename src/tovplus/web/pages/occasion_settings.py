"""A planner changes the time zone the occasion's pages show times in (from its integrations page)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from tovplus.errors import InvalidInput
from tovplus.services import occasions
from tovplus.web import forms
from tovplus.web.security import Flash
from tovplus.web.urls import integrations_url
from tovplus.web.visit import FormDep, page, visit

router = APIRouter(include_in_schema=False)


@router.post("/occasions/{occasion_id}/time-zone")
@page
def change_time_zone(request: Request, occasion_id: str, form: FormDep) -> Response:
    """Store the new zone (an IANA name) and go back to the integrations page, which shows it."""
    v = visit(request)
    user = v.signed_in
    v.check_csrf(form)
    back = integrations_url(occasion_id) + "#time-zone"
    try:
        with v.rt.db.write() as session:
            occasions.set_time_zone(session, user, occasion_id, forms.text(form, "time_zone"))
    except InvalidInput as exc:
        message = exc.fields[0].message if exc.fields else exc.message
        return v.redirect(back, Flash(error=f"The time zone was not changed: {message}"))
    zone = forms.text(form, "time_zone").strip() or "UTC"
    return v.redirect(back, Flash(notice=f"Times on this occasion's pages are now shown in {zone}."))
