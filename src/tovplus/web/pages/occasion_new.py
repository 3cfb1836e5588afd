"""A planner creates an occasion from the pages; its time zone defaults to the planner's browser's.

The form's time zone input is filled by ``static/app.js`` from ``Intl.DateTimeFormat`` when
scripts run; without them it stays ``UTC``. The API (``POST /v1/occasions``) takes the same field.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from starlette.responses import Response

from tovplus.errors import FieldIssue, InvalidInput
from tovplus.services import occasions
from tovplus.web import forms
from tovplus.web.security import Flash
from tovplus.web.urls import integrations_url
from tovplus.web.visit import FormDep, page, visit

router = APIRouter(include_in_schema=False)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            "Choose the day it starts.",
            fields=[FieldIssue("starts_on", "invalid", "Use a date like 2027-06-12.")],
        ) from None


@router.post("/occasions")
@page
def create_occasion(request: Request, form: FormDep) -> Response:
    """Create the occasion (the planner plans it) and continue on its integrations page."""
    v = visit(request)
    user = v.signed_in
    v.check_csrf(form)
    try:
        with v.rt.db.write() as session:
            occasion = occasions.create_occasion(
                session,
                user,
                forms.text(form, "name"),
                _date(forms.text(form, "starts_on")),
                forms.text(form, "time_zone") or None,
            )
            occasion_id = occasion.id
    except InvalidInput as exc:
        return v.redirect("/", Flash(error=f"Nothing was created: {exc.message}"))
    return v.redirect(
        integrations_url(occasion_id), Flash(notice="Occasion created. Connect a partner below.")
    )
