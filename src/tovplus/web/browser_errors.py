"""Error pages for browsers, the error envelope for everyone else.

An unknown path or method outside ``/v1`` asked for by a browser (``Accept`` prefers
``text/html``) gets the site's HTML error page; API clients, and every ``/v1`` path, keep the
contract's JSON envelope. The app's existing handler (the API's) is wrapped, not replaced, so
``web`` never imports ``api``.
"""

from __future__ import annotations

import inspect

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from tovplus.web.visit import error_page

TITLES = {404: "Page not found", 405: "That did not work"}
MESSAGES = {
    404: "There is no page at this address. Check the link, or start again from your occasions.",
    405: "This address cannot be used that way. Go back and try again from the page.",
}


def wants_html(request: Request) -> bool:
    """True for a browser's page request: ``text/html`` is asked for before any JSON."""
    accept = request.headers.get("accept", "").lower()
    html, json = accept.find("text/html"), accept.find("application/json")
    return html >= 0 and (json < 0 or html < json)


def install_browser_errors(app: FastAPI) -> None:
    """Wrap the app's HTTP-error handler so browsers outside ``/v1`` get an HTML page."""
    fallback = app.exception_handlers.get(StarletteHTTPException)

    async def handler(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        if status in TITLES and wants_html(request) and not request.url.path.startswith("/v1/"):
            return await run_in_threadpool(error_page, request, status, TITLES[status], MESSAGES[status])
        if fallback is None:  # the API always installs one
            raise exc
        answer = fallback(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(StarletteHTTPException, handler)
