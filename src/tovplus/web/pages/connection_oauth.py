"""The connection page's OAuth2 part: "Connect with <partner>" / "Reconnect", and what came back.

The button posts here (CSRF as every form); this asks ``services.connections`` for the partner's
authorization URL and sends the browser there (303). The page that holds the button allows that
partner's origin as a form target in its CSP (``form-action``), else Chromium blocks the redirect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from tovplus.errors import Conflict, InvalidInput
from tovplus.services import connections, oauth
from tovplus.web.security import CONTENT_SECURITY_POLICY, Flash, page_headers
from tovplus.web.urls import connection_url
from tovplus.web.visit import FormDep, Readable, Visit, page, visit

router = APIRouter(include_in_schema=False)
_PATH = "/occasions/{occasion_id}/integrations/connections/{connection_id}"
#: The query parameter the callback route adds to the page it sends the browser back to.
OUTCOME_PARAM = "oauth"
_STATUS_WORDS = {
    "pending": "Not connected yet: {partner} has not granted access.",
    "authorized": "Connected: {partner} granted access.",
    "reconnect_required": "{partner} no longer accepts the access it granted. Reconnect to grant it again; "
    "syncs wait until then.",
}


@dataclass(frozen=True, slots=True)
class OAuthPanel:
    """What the page shows of an ``oauth2`` connection's grant."""

    partner: str
    status: str
    sentence: str
    scopes: list[tuple[str, str]]
    expires_at: str | None
    client_configured: bool
    client_hint: str
    #: "authorized" | "denied" | "failed" when the partner just sent the browser back here.
    outcome: str | None
    outcome_message: str | None


def scope_words(scope: str) -> str:
    """``messages.send`` as "send messages", ``rsvps.read`` as "read rsvps" (else the code itself)."""
    thing, _, verb = scope.partition(".")
    return f"{verb} {thing}".replace("_", " ") if thing and verb else scope


def _outcome_message(outcome: str | None, partner: str) -> str | None:
    return {
        "authorized": f"Connected: {partner} granted access.",
        "denied": f"Access was not granted at {partner}; nothing changed.",
        "failed": f"The sign-in with {partner} did not complete; nothing changed. See the activity below.",
    }.get(outcome or "")


def oauth_panel(v: Visit, view: Readable) -> OAuthPanel | None:
    """The panel for an ``oauth2`` connection's page, ``None`` for an api-key adapter."""
    grant = view["authorization"]
    if grant is None:
        return None
    partner = view["name"]
    outcome = v.request.query_params.get(OUTCOME_PARAM)
    outcome = outcome if outcome in ("authorized", "denied", "failed") else None
    key = view["integration_key"]
    return OAuthPanel(
        partner=partner,
        status=grant["status"],
        sentence=_STATUS_WORDS.get(grant["status"], "").format(partner=partner),
        scopes=[(s, scope_words(s)) for s in grant["scopes"]],
        expires_at=grant["expires_at"],
        client_configured=oauth.client_configured(v.rt, key),
        client_hint=f"tovplus oauth set-client {key}",
        outcome=outcome,
        outcome_message=_outcome_message(outcome, partner),
    )


def allow_partner_form_target(v: Visit, view: Readable, response: Response) -> Response:
    """Let the page's Connect form send the browser on to the partner (CSP ``form-action``)."""
    adapter = v.rt.registry.find(view["integration_key"])
    if adapter is None or adapter.oauth2 is None:
        return response
    origin = oauth.authorize_origin(v.rt, adapter, dict(view["config"]))
    if origin and all(c not in origin for c in " ;,'\"\r\n"):
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            "form-action 'self'", f"form-action 'self' {origin}"
        )
    return response


def panel_context(v: Visit, view: Readable) -> dict[str, Any]:
    """The template's ``oauth`` value."""
    return {"oauth": oauth_panel(v, view)}


@router.post(_PATH + "/authorize")
@page
def connect(request: Request, occasion_id: str, connection_id: str, form: FormDep) -> Response:
    """ "Connect with <partner>" / "Reconnect": off to the partner's authorization page (303)."""
    v = visit(request)
    user = v.signed_in
    v.check_csrf(form)
    here = connection_url(occasion_id, connection_id)
    try:
        url = connections.authorize_connection(v.rt, user, occasion_id, connection_id, here)
    except (Conflict, InvalidInput) as exc:
        return v.redirect(here, Flash(error=exc.message))
    return page_headers(RedirectResponse(url, status_code=303))
