"""The planner's and the admin's pages: thin handlers over the same services as the JSON API.

Every action is a plain form post answered with a redirect (POST-redirect-GET); the
next page shows a one-time flash message. Handlers are wrapped by :func:`page`, which
turns the services' typed errors into HTML pages (404, 403, 409 …) instead of JSON.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ParamSpec
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from tovplus.api.errors import status_for
from tovplus.errors import (
    Conflict,
    FieldIssue,
    InvalidInput,
    NotFound,
    RateLimited,
    TovPlusError,
    Unauthenticated,
)
from tovplus.runtime import Runtime
from tovplus.services import connections, occasions
from tovplus.services import sync as syncs
from tovplus.services.auth import UserCaller, require_admin, web_sessions
from tovplus.services.connections import STATES, AdminFilters, ConnectionPatch
from tovplus.web import forms, lookups
from tovplus.web.render import ACTIVITY_LABELS, HEALTH_LABELS, STATE_LABELS, render
from tovplus.web.security import (
    CSRF_FIELD,
    FLASH_COOKIE,
    FLASH_MAX_AGE,
    PRESESSION_COOKIE,
    SESSION_COOKIE,
    Flash,
    clear_cookie,
    cookie,
    csrf_ok,
    csrf_token_for,
    new_presession,
    open_flash,
    page_headers,
    seal_flash,
    set_cookie,
)

P = ParamSpec("P")
router = APIRouter(include_in_schema=False)
ADMIN_PAGE_SIZE = 25
FEED_PAGE_SIZE = 15
RECORDS_PAGE_SIZE = 25
ACTIVITY_PAGE_SIZE = 20


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class CsrfFailed(Exception):
    pass


async def read_form(request: Request) -> FormData:
    return await request.form(max_files=0, max_fields=200)


FormDep = Annotated[FormData, Depends(read_form)]


# --- request context ---------------------------------------------------------------------------


@dataclass
class Visit:
    """Who is looking, with what session, and the flash message waiting for them."""

    request: Request
    rt: Runtime
    user: UserCaller | None
    token: str | None
    flash: Flash | None = None
    had_flash: bool = False

    @property
    def signed_in(self) -> UserCaller:
        if self.user is None:
            raise SignInRequired(_here(self.request))
        return self.user

    @property
    def csrf(self) -> str:
        seed = self.token or cookie(self.request, PRESESSION_COOKIE) or ""
        return csrf_token_for(seed) if seed else ""

    def check_csrf(self, form: FormData) -> None:
        if not csrf_ok(self.token, form.get(CSRF_FIELD)):
            raise CsrfFailed

    def context(self, **extra: Any) -> dict[str, Any]:
        return {
            "user": self.user,
            "csrf_token": self.csrf,
            "csrf_field": CSRF_FIELD,
            "flash": self.flash,
            "request_path": self.request.url.path,
            **extra,
        }

    def page(self, template: str, *, status: int = 200, **extra: Any) -> Response:
        response = render(template, self.context(**extra), status=status)
        if self.had_flash:
            clear_cookie(response, self.rt.settings, FLASH_COOKIE)
        return response

    def redirect(self, url: str, flash: Flash | None = None) -> Response:
        response = page_headers(RedirectResponse(url, status_code=303))
        if flash is not None and self.token:
            set_cookie(
                response, self.rt.settings, FLASH_COOKIE, seal_flash(self.token, flash), max_age=FLASH_MAX_AGE
            )
        return response


_ACTIONS = ("/settings", "/state", "/rotate", "/sync", "/revoke")


def _here(request: Request) -> str:
    """Where to come back to after signing in: this page, or for a form post the page it was on."""
    path = request.url.path
    if request.method != "GET":
        return path.rsplit("/", 1)[0] if path.endswith(_ACTIONS) else path
    return path + (f"?{request.url.query}" if request.url.query else "")


def visit(request: Request) -> Visit:
    rt: Runtime = request.app.state.runtime
    token = cookie(request, SESSION_COOKIE)
    user = web_sessions.session_caller(rt, token)
    if user is None:
        token = None
    v = Visit(request, rt, user, token)
    raw_flash = cookie(request, FLASH_COOKIE)
    if raw_flash is not None:
        v.had_flash = True
        if token:
            v.flash = open_flash(token, raw_flash)
    return v


def safe_next(value: str | None) -> str:
    """Only a local absolute path may be a redirect target after sign-in."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or len(value) > 500:
        return "/"
    if any(ord(c) < 32 for c in value):
        return "/"
    return value


def page(fn: Callable[P, Response]) -> Callable[P, Response]:
    """Turn the typed errors of a page handler into HTML answers."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
        request = kwargs.get("request")
        assert isinstance(request, Request)
        try:
            return fn(*args, **kwargs)
        except SignInRequired as exc:
            return page_headers(
                RedirectResponse(f"/sign-in?{urlencode({'next': exc.next_path})}", status_code=303)
            )
        except CsrfFailed:
            return _error_page(request, 403, "This form has expired", _CSRF_MESSAGE)
        except TovPlusError as exc:
            status = status_for(exc)
            title = {404: "Not found", 403: "Not allowed"}.get(status, "That did not work")
            message = exc.message
            if status == 404:
                message = "This page does not exist, or you do not have access to it."
            return _error_page(request, status, title, message)

    return wrapper


_CSRF_MESSAGE = "For your safety this form can only be sent from a fresh page. Go back, reload and try again."


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    v = visit(request)
    return v.page("error.html", status=status, title=title, message=message)


# --- sign-in and sign-out --------------------------------------------------------------------------


@router.get("/sign-in")
@page
def sign_in_form(request: Request) -> Response:
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
    v = visit(request)
    next_path = safe_next(forms.text(form, "next"))
    if not csrf_ok(cookie(request, PRESESSION_COOKIE), form.get(CSRF_FIELD)):
        return _sign_in_page(
            v, next_path=next_path, email=forms.text(form, "email"), error=_CSRF_MESSAGE, status=403
        )
    email = forms.text(form, "email")
    client = request.client.host if request.client else "unknown"
    try:
        signed = web_sessions.sign_in(v.rt, email, forms.text(form, "password"), client=client)
    except Unauthenticated as exc:
        return _sign_in_page(v, next_path=next_path, email=email, error=exc.message, status=401)
    except RateLimited as exc:
        page = _sign_in_page(v, next_path=next_path, email=email, error=exc.message, status=429)
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    if v.token:
        web_sessions.sign_out(v.rt, v.token)
    if next_path == "/" and signed.caller.is_admin:
        next_path = "/admin/integrations"
    response = page_headers(RedirectResponse(next_path, status_code=303))
    set_cookie(
        response,
        v.rt.settings,
        SESSION_COOKIE,
        signed.session_token,
        max_age=int(web_sessions.SESSION_TTL.total_seconds()),
    )
    clear_cookie(response, v.rt.settings, PRESESSION_COOKIE)
    return response


@router.post("/sign-out")
@page
def sign_out(request: Request, form: FormDep) -> Response:
    v = visit(request)
    if v.token is None:
        return page_headers(RedirectResponse("/sign-in", status_code=303))
    v.check_csrf(form)
    web_sessions.sign_out(v.rt, v.token)
    response = page_headers(RedirectResponse("/sign-in?signed_out=1", status_code=303))
    for name in (SESSION_COOKIE, FLASH_COOKIE):
        clear_cookie(response, v.rt.settings, name)
    return response


# --- home ---------------------------------------------------------------------------------------------


@router.get("/")
@page
def home(request: Request) -> Response:
    v = visit(request)
    user = v.signed_in
    if user.is_admin:
        return v.redirect("/admin/integrations")
    return v.page("occasions.html", title="Your occasions", occasions=lookups.planned_occasions(v.rt, user))


# --- the planner's page ---------------------------------------------------------------------------


def _base(occasion_id: str) -> str:
    return f"/occasions/{quote(occasion_id, safe='')}/integrations"


def _connection_url(occasion_id: str, connection_id: str) -> str:
    return f"{_base(occasion_id)}/connections/{quote(connection_id, safe='')}"


@router.get("/occasions/{occasion_id}/integrations")
@page
def integrations(request: Request, occasion_id: str) -> Response:
    v = visit(request)
    overview = connections.occasion_overview(v.rt, v.signed_in, occasion_id)
    return v.page(
        "integrations.html",
        title="Integrations",
        occasion_id=occasion_id,
        occasion_name=lookups.occasion_name(v.rt, occasion_id),
        catalog=overview["catalog"],
        connections=overview["connections"],
        activity=overview["activity"],
        actors=lookups.actor_names(v.rt, [a["actor"] for a in overview["activity"]]),
        names={c["id"]: c["name"] for c in overview["connections"]},
        base=_base(occasion_id),
    )


def _adapter_or_404(overview: Mapping[str, Any], integration_key: str) -> dict[str, Any]:
    for adapter in overview["catalog"]:
        if adapter["integration_key"] == integration_key:
            return dict(adapter)
    raise NotFound("No such integration.")


def _events(v: Visit, occasion_id: str) -> list[tuple[str, str]]:
    with v.rt.db.read() as session:
        page_ = occasions.list_events(session, v.signed_in, occasion_id, limit=200, cursor=None)
        return [(e.id, e.name) for e in page_.items]


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
        base=_base(occasion_id),
    )


@router.get("/occasions/{occasion_id}/integrations/new/{integration_key}")
@page
def new_connection(request: Request, occasion_id: str, integration_key: str) -> Response:
    v = visit(request)
    overview = connections.occasion_overview(v.rt, v.signed_in, occasion_id)
    return _new_form(v, occasion_id, _adapter_or_404(overview, integration_key))


@router.post("/occasions/{occasion_id}/integrations/new/{integration_key}")
@page
def create_connection(request: Request, occasion_id: str, integration_key: str, form: FormDep) -> Response:
    v = visit(request)
    user = v.signed_in
    v.check_csrf(form)
    overview = connections.occasion_overview(v.rt, user, occasion_id)
    adapter = _adapter_or_404(overview, integration_key)
    data = forms.create_input(form, adapter)
    try:
        result = connections.create_connection(v.rt, user, occasion_id, data)
    except (InvalidInput, Conflict) as exc:
        message = (
            "Fix the highlighted fields before enabling. Nothing was saved."
            if data.state == "enabled" and exc.fields
            else f"{exc.message} Nothing was saved."
        )
        return _new_form(
            v,
            occasion_id,
            adapter,
            values=forms.echoed(form, adapter),
            errors=forms.FormErrors.of(message, exc.fields, forms.input_names(adapter)),
            status=status_for(exc),
        )
    view = result.connection
    notice = (
        f"{adapter['name']} is connected and enabled."
        if view["state"] == "enabled"
        else f"{adapter['name']} was saved as a draft."
    )
    if view["state"] != "enabled" and view["validation"]["errors"]:
        notice += " Fix the fields marked below, then enable it."
    return v.redirect(
        _connection_url(occasion_id, view["id"]),
        Flash(notice=notice, issued_key=result.issued_key, connection_id=view["id"]),
    )


# --- one connection -----------------------------------------------------------------------------


def _detail(
    v: Visit,
    occasion_id: str,
    connection_id: str,
    *,
    values: dict[str, Any] | None = None,
    errors: forms.FormErrors | None = None,
    status: int = 200,
) -> Response:
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
    )
    activity = connections.occasion_activity(
        v.rt,
        user,
        occasion_id,
        connection_id=connection_id,
        limit=ACTIVITY_PAGE_SIZE,
        cursor=q.get("activity_cursor") or None,
    )
    if errors is None:
        stored = [FieldIssue(e["field"], e["code"], e["message"]) for e in view["validation"]["errors"]]
        names = forms.input_names(adapter) if adapter else []
        errors = forms.FormErrors.of("", stored, names)
        errors.message = None
    if values is None:
        values = {f"config.{k}": ("" if val is None else val) for k, val in view["config"].items()}
        values["action_keys"] = list(view["action_keys"])
    issued_key = None
    if v.flash and v.flash.issued_key and v.flash.connection_id == connection_id:
        issued_key = v.flash.issued_key
    return v.page(
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
        runs=lookups.recent_runs(v.rt, connection_id),
        record_summary=lookups.record_summary,
        values=values,
        errors=errors,
        issued_key=issued_key,
        base=_base(occasion_id),
        url=_connection_url(occasion_id, connection_id),
        records_cursor=q.get("records_cursor"),
        activity_cursor=q.get("activity_cursor"),
    )


@router.get("/occasions/{occasion_id}/integrations/connections/{connection_id}")
@page
def connection_detail(request: Request, occasion_id: str, connection_id: str) -> Response:
    return _detail(visit(request), occasion_id, connection_id)


@router.post("/occasions/{occasion_id}/integrations/connections/{connection_id}/settings")
@page
def save_settings(request: Request, occasion_id: str, connection_id: str, form: FormDep) -> Response:
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
            return v.redirect(_connection_url(occasion_id, connection_id), Flash(error=exc.message))
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
    return v.redirect(_connection_url(occasion_id, connection_id), Flash(notice="Settings saved."))


_STATE_NOTICES = {
    "enabled": "Enabled. The integration can now use its key.",
    "disabled": "Disabled. The integration's key is refused until you enable it again.",
    "revoked": "Revoked. Its key no longer works and its stored secrets were destroyed.",
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
    url = _connection_url(occasion_id, connection_id)
    try:
        result = connections.update_connection(v.rt, user, occasion_id, connection_id, patch)
    except Conflict as exc:
        return v.redirect(url, Flash(error=exc.message))
    return v.redirect(url, Flash(notice=notice, issued_key=result.issued_key, connection_id=connection_id))


@router.post("/occasions/{occasion_id}/integrations/connections/{connection_id}/state")
@page
def change_state(request: Request, occasion_id: str, connection_id: str, form: FormDep) -> Response:
    target = forms.text(form, "state")
    if target not in ("enabled", "disabled"):
        raise InvalidInput("Choose enable or disable.", fields=[FieldIssue("state", "invalid", "")])
    return _change(
        request, occasion_id, connection_id, form, ConnectionPatch(state=target), _STATE_NOTICES[target]
    )


@router.post("/occasions/{occasion_id}/integrations/connections/{connection_id}/revoke")
@page
def revoke(request: Request, occasion_id: str, connection_id: str, form: FormDep) -> Response:
    return _change(
        request, occasion_id, connection_id, form, ConnectionPatch(state="revoked"), _STATE_NOTICES["revoked"]
    )


@router.post("/occasions/{occasion_id}/integrations/connections/{connection_id}/rotate")
@page
def rotate(request: Request, occasion_id: str, connection_id: str, form: FormDep) -> Response:
    return _change(
        request,
        occasion_id,
        connection_id,
        form,
        ConnectionPatch(rotate_key=True),
        "A new key was issued. The old key stopped working just now.",
    )


@router.post("/occasions/{occasion_id}/integrations/connections/{connection_id}/sync")
@page
def sync_now(request: Request, occasion_id: str, connection_id: str, form: FormDep) -> Response:
    v = visit(request)
    user = v.signed_in
    v.check_csrf(form)
    url = _connection_url(occasion_id, connection_id)
    try:
        run_id = syncs.request_sync(v.rt, user, occasion_id, connection_id)
    except Conflict as exc:
        return v.redirect(url, Flash(error=exc.message))
    return v.redirect(url, Flash(notice=f"Sync queued ({run_id}). It runs in the background in a moment."))


# --- the admin's page ------------------------------------------------------------------------------


def _filter(q: Mapping[str, str], name: str) -> str | None:
    value = q.get(name, "").strip()
    return value[:64] or None


@router.get("/admin/integrations")
@page
def admin(request: Request) -> Response:
    v = visit(request)
    user = require_admin(v.signed_in)
    q = request.query_params
    filters = AdminFilters(
        state=_filter(q, "state"),
        health=_filter(q, "health"),
        integration_key=_filter(q, "integration_key"),
        occasion_id=_filter(q, "occasion_id"),
    )
    kind = _filter(q, "kind")
    _everything, overall = connections.admin_list(v.rt, user, AdminFilters(), limit=1, cursor=None)
    error = None
    status = 200
    try:
        listing, summary = connections.admin_list(
            v.rt, user, filters, limit=ADMIN_PAGE_SIZE, cursor=_filter(q, "cursor")
        )
    except InvalidInput as exc:
        error, status = exc.message, 422
        listing, summary = connections.admin_list(
            v.rt, user, AdminFilters(), limit=ADMIN_PAGE_SIZE, cursor=None
        )
        filters = AdminFilters()
    try:
        feed = connections.admin_activity(
            v.rt, user, kind=kind, limit=FEED_PAGE_SIZE, cursor=_filter(q, "activity_cursor")
        )
    except InvalidInput as exc:
        error, status = exc.message, 422
        feed = connections.admin_activity(v.rt, user, kind=kind, limit=FEED_PAGE_SIZE, cursor=None)
    active = {k: val for k, val in vars_of(filters).items() if val}
    occasion_ids = [c["occasion_id"] for c in listing.items] + [
        a["occasion_id"] for a in feed.items if a["occasion_id"]
    ]

    def link(**changes: str | None) -> str:
        params = {**active, **({"kind": kind} if kind else {})}
        for key, value in changes.items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = value
        return "/admin/integrations" + (f"?{urlencode(params)}" if params else "")

    return v.page(
        "admin.html",
        status=status,
        title="All integrations",
        overall=overall,
        summary=summary,
        connections=listing.items,
        next_cursor=listing.next_cursor,
        paged=bool(_filter(q, "cursor")),
        activity=feed.items,
        activity_next=feed.next_cursor,
        activity_paged=bool(_filter(q, "activity_cursor")),
        filters=active,
        kind=kind,
        error=error,
        occasion_names=lookups.occasion_names(v.rt, occasion_ids),
        occasion_choices=lookups.occasion_choices(v.rt),
        actors=lookups.actor_names(v.rt, [a["actor"] for a in feed.items]),
        adapters=[(a.integration_key, a.name) for a in v.rt.registry],
        states=[(s, STATE_LABELS[s]) for s in STATES],
        healths=[(h, HEALTH_LABELS[h]) for h in ("healthy", "degraded", "failing", "unknown")],
        kinds=list(ACTIVITY_LABELS.items()),
        link=link,
        connection_url=_connection_url,
    )


def vars_of(filters: AdminFilters) -> dict[str, str | None]:
    return {
        "state": filters.state,
        "health": filters.health,
        "integration_key": filters.integration_key,
        "occasion_id": filters.occasion_id,
    }
