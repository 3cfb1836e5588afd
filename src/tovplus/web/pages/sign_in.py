"""Signing in and out, and the home page each kind of user lands on."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from tovplus.errors import RateLimited, Unauthenticated
from tovplus.services import auth, notifications
from tovplus.web import forms, lookups
from tovplus.web.clients import client_address
from tovplus.web.render import render
from tovplus.web.security import (
    CSRF_FIELD,
    FLASH_COOKIE,
    PRESESSION_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    cookie,
    csrf_ok,
    csrf_token_for,
    new_presession,
    page_headers,
    set_cookie,
)
from tovplus.web.visit import CSRF_MESSAGE, FormDep, Visit, page, safe_next, visit

router = APIRouter(include_in_schema=False)


@router.get("/sign-in")
@page
def sign_in_form(request: Request) -> Response:
    """The sign-in page (a signed-in visitor goes straight on)."""
    v = visit(request)
    next_path = safe_next(request.query_params.get("next"))
    if v.user is not None:
        return v.redirect(next_path)
    return _sign_in_page(v, next_path=next_path, signed_out=request.query_params.get("signed_out") == "1")


def _sign_in_page(
    v: Visit,
    *,
    next_path: str,
    email: str = "",
    error: str | None = None,
    status: int = 200,
    signed_out: bool = False,
) -> Response:
    pre = cookie(v.request, PRESESSION_COOKIE) or new_presession()
    context = v.context(title="Sign in", next_path=next_path, email=email, error=error, signed_out=signed_out)
    context["csrf_token"] = csrf_token_for(pre)
    response = render("sign_in.html", context, status=status)
    set_cookie(response, v.rt.settings, PRESESSION_COOKIE, pre, max_age=3600)
    if v.had_flash:
        clear_cookie(response, v.rt.settings, FLASH_COOKIE)
    return response


@router.post("/sign-in")
@page
def sign_in(request: Request, form: FormDep) -> Response:
    """Check the email and password and open a session."""
    v = visit(request)
    next_path = safe_next(forms.text(form, "next"))
    if not csrf_ok(cookie(request, PRESESSION_COOKIE), form.get(CSRF_FIELD)):
        return _sign_in_page(
            v, next_path=next_path, email=forms.text(form, "email"), error=CSRF_MESSAGE, status=403
        )
    email = forms.text(form, "email")
    client = client_address(request, v.rt.settings)
    try:
        signed = auth.sign_in(v.rt, email, forms.text(form, "password"), client=client)
    except Unauthenticated as exc:
        return _sign_in_page(v, next_path=next_path, email=email, error=exc.message, status=401)
    except RateLimited as exc:
        refused = _sign_in_page(v, next_path=next_path, email=email, error=exc.message, status=429)
        refused.headers["Retry-After"] = str(exc.retry_after)
        return refused
    if v.token:
        auth.sign_out(v.rt, v.token)
    if next_path == "/" and signed.caller.is_admin:
        next_path = "/admin/integrations"
    response = page_headers(RedirectResponse(next_path, status_code=303))
    set_cookie(
        response,
        v.rt.settings,
        SESSION_COOKIE,
        signed.session_token,
        max_age=int(auth.SESSION_TTL.total_seconds()),
    )
    clear_cookie(response, v.rt.settings, PRESESSION_COOKIE)
    return response


@router.post("/sign-out")
@page
def sign_out(request: Request, form: FormDep) -> Response:
    """Revoke the session and clear its cookies."""
    v = visit(request)
    if v.token is None:
        return page_headers(RedirectResponse("/sign-in", status_code=303))
    v.check_csrf(form)
    auth.sign_out(v.rt, v.token)
    response = page_headers(RedirectResponse("/sign-in?signed_out=1", status_code=303))
    for name in (SESSION_COOKIE, FLASH_COOKIE):
        clear_cookie(response, v.rt.settings, name)
    return response


@router.get("/")
@page
def home(request: Request) -> Response:
    """Admins go to every integration; planners see their occasions."""
    v = visit(request)
    user = v.signed_in
    if user.is_admin:
        return v.redirect("/admin/integrations")
    planned = lookups.planned_occasions(v.rt, user)
    return v.page(
        "occasions.html",
        title="Your occasions",
        occasions=planned,
        # "Needs attention": the open notices of every occasion the planner plans, with dismiss
        notices=notifications.open_notices(v.rt, user),
        occasion_names={o.id: o.name for o in planned},
        back_to="/",
    )
