"""What every page handler starts from: who is looking (a :class:`Visit`), and :func:`page`.

Every action is a plain form post answered with a redirect (POST-redirect-GET); the
next page shows a flash message, once: its ticket is used up on the server. Handlers are
wrapped by :func:`page`, which turns the services' typed errors into HTML pages (404, 403,
409 …) instead of JSON.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Annotated, Any, ParamSpec, Protocol
from urllib.parse import urlencode

from fastapi import Depends, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from tovplus.errors import TovPlusError, status_for
from tovplus.runtime import Runtime
from tovplus.services.auth import UserCaller, issue_ticket, session_caller, use_ticket
from tovplus.web.render import render
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
    open_flash,
    page_headers,
    seal_flash,
    set_cookie,
)

P = ParamSpec("P")
CSRF_MESSAGE = "For your safety this form can only be sent from a fresh page. Go back, reload and try again."


class Readable(Protocol):
    """A view the pages read by key: a dict, or a service view readable as a mapping."""

    def __getitem__(self, name: str, /) -> Any: ...


class SignInRequired(Exception):
    """Raised by :attr:`Visit.signed_in`: answered with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class CsrfFailed(Exception):
    """A form came without the CSRF token of the visitor's session: answered with a 403 page."""


async def read_form(request: Request) -> FormData:
    """The posted form (no files, at most 200 fields)."""
    return await request.form(max_files=0, max_fields=200)


FormDep = Annotated[FormData, Depends(read_form)]


@dataclass
class Visit:
    """Who is looking, with what session, and the flash message waiting for them."""

    request: Request
    rt: Runtime
    user: UserCaller | None
    token: str | None
    had_flash: bool = False
    #: The flash message as the cookie holds it, before its ticket was used (see :attr:`flash`).
    sealed_flash: Flash | None = None

    @property
    def flash(self) -> Flash | None:
        """The flash message to show, if its one-time ticket is still good on the server.

        Read on first use (once per request, however many visits it makes): the ticket is used
        up then, so the same cookie sent again, from this browser or any other, shows nothing.
        """
        state = self.request.state
        if not hasattr(state, "tovplus_flash"):
            sealed, user = self.sealed_flash, self.user
            good = (
                sealed is not None and user is not None and use_ticket(self.rt, user.user_id, sealed.ticket)
            )
            state.tovplus_flash = sealed if good else None
        flash: Flash | None = state.tovplus_flash
        return flash

    @property
    def signed_in(self) -> UserCaller:
        """The signed-in user, or :class:`SignInRequired`."""
        if self.user is None:
            raise SignInRequired(_here(self.request))
        return self.user

    @property
    def csrf(self) -> str:
        seed = self.token or cookie(self.request, PRESESSION_COOKIE) or ""
        return csrf_token_for(seed) if seed else ""

    def check_csrf(self, form: FormData) -> None:
        """:class:`CsrfFailed` unless the form carries this session's CSRF token."""
        if not csrf_ok(self.token, form.get(CSRF_FIELD)):
            raise CsrfFailed

    def context(self, **extra: Any) -> dict[str, Any]:
        """What every template gets, plus ``extra``."""
        return {
            "user": self.user,
            "csrf_token": self.csrf,
            "csrf_field": CSRF_FIELD,
            "flash": self.flash,
            "request_path": self.request.url.path,
            **extra,
        }

    def page(self, template: str, *, status: int = 200, **extra: Any) -> Response:
        """Render ``template``; the flash message shown on it is cleared."""
        response = render(template, self.context(**extra), status=status)
        if self.had_flash:
            clear_cookie(response, self.rt.settings, FLASH_COOKIE)
        return response

    def redirect(self, url: str, flash: Flash | None = None) -> Response:
        """A 303 to ``url``, carrying ``flash`` to the next page."""
        response = page_headers(RedirectResponse(url, status_code=303))
        if flash is not None and self.token and self.user is not None:
            ticket = issue_ticket(self.rt, self.user.user_id, timedelta(seconds=FLASH_MAX_AGE))
            sealed = seal_flash(self.token, replace(flash, ticket=ticket))
            set_cookie(response, self.rt.settings, FLASH_COOKIE, sealed, max_age=FLASH_MAX_AGE)
        return response


_ACTIONS = ("/settings", "/state", "/rotate", "/sync", "/revoke", "/check", "/authorize", "/time-zone")


def _here(request: Request) -> str:
    """Where to come back to after signing in: this page, or for a form post the page it was on."""
    path = request.url.path
    if request.method != "GET":
        return path.rsplit("/", 1)[0] if path.endswith(_ACTIONS) else path
    return path + (f"?{request.url.query}" if request.url.query else "")


def visit(request: Request) -> Visit:
    """The :class:`Visit` of this request: its session's user and its flash message."""
    rt: Runtime = request.app.state.runtime
    token = cookie(request, SESSION_COOKIE)
    user = session_caller(rt, token)
    if user is None:
        token = None
    v = Visit(request, rt, user, token)
    raw_flash = cookie(request, FLASH_COOKIE)
    if raw_flash is not None:
        v.had_flash = True
        if token:
            v.sealed_flash = open_flash(token, raw_flash)
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
            return error_page(request, 403, "This form has expired", CSRF_MESSAGE)
        except TovPlusError as exc:
            status = status_for(exc)
            title = {404: "Not found", 403: "Not allowed"}.get(status, "That did not work")
            message = exc.message
            if status == 404:
                message = "This page does not exist, or you do not have access to it."
            return error_page(request, status, title, message)

    return wrapper


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    """The error page, with ``status``."""
    v = visit(request)
    return v.page("error.html", status=status, title=title, message=message)
