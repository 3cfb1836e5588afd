"""OAuth2 connections: "Connect with <partner>" and the partner's callback.

``authorize`` needs a bearer token like every planner route. The callback is reached by the
planner's browser, sent back by the partner: it carries no bearer token, so it is bound to the
browser's signed-in session (the pages' cookie), which must be the user who asked for the URL.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request, Security
from starlette.responses import RedirectResponse, Response

from tovplus.api.deps import CallerDep, RuntimeDep
from tovplus.api.schemas import BEARER, AuthorizeIn, AuthorizeOut
from tovplus.services import connections
from tovplus.services.auth import SESSION_COOKIE, session_caller

router = APIRouter(tags=["oauth"])
#: The query parameter the page reads to show how the partner's answer ended.
OUTCOME_PARAM = "oauth"


@router.post(
    "/v1/occasions/{occasion_id}/integrations/connections/{connection_id}/authorize",
    response_model=AuthorizeOut,
    dependencies=[Security(BEARER)],
)
def authorize(
    occasion_id: str, connection_id: str, rt: RuntimeDep, caller: CallerDep, body: AuthorizeIn | None = None
) -> AuthorizeOut:
    """The partner's authorization URL (single-use state for this user and connection, 10 minutes,
    PKCE S256). Open it in a browser signed in to TOV Plus as the same user: the callback checks."""
    return_to = body.return_to if body is not None else None
    url = connections.authorize_connection(rt, caller, occasion_id, connection_id, return_to)
    return AuthorizeOut(authorize_url=url)


@router.get(
    "/v1/integrations/oauth/callback",
    status_code=303,
    response_class=RedirectResponse,
    responses={303: {"description": "Back to `return_to` (default: the connection's page)"}},
)
def callback(
    request: Request,
    rt: RuntimeDep,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Response:
    """The partner's redirect back: exchanges the code (or records ``error=access_denied``) and
    answers 303 to ``return_to`` with ``?oauth=authorized|denied|failed``. 400 ``invalid_state``
    for a missing, used, expired or foreign state, or a browser not signed in as its user."""
    user = session_caller(rt, request.cookies.get(SESSION_COOKIE))
    outcome = connections.finish_authorization(rt, code=code, state=state, error=error, session_user=user)
    response = RedirectResponse(_with_outcome(outcome.return_to, outcome.result.value), status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _with_outcome(path: str, result: str) -> str:
    parts = urlsplit(path)
    query = "&".join(q for q in (parts.query, urlencode({OUTCOME_PARAM: result})) if q)
    return urlunsplit(("", "", parts.path, query, parts.fragment))
