"""The simulated messaging partner (``guest_messaging``), mounted under ``/messaging``.

OAuth2 (authorization code with PKCE S256, refresh tokens that rotate on every use):

* ``GET /messaging/oauth/authorize?response_type=code&client_id=&redirect_uri=&state=&scope=
  &code_challenge=&code_challenge_method=S256``: an "Allow … ?" page whose Allow and Deny buttons
  POST to the same path; Allow → 303 ``redirect_uri?code=…&state=…``, Deny → 303
  ``redirect_uri?error=access_denied&state=…``. An unknown client or a bad redirect is a 400 page.
* ``POST /messaging/oauth/token`` (``client_secret_post`` or ``client_secret_basic``):
  ``grant_type=authorization_code`` (``code``, ``redirect_uri``, ``code_verifier``) or
  ``grant_type=refresh_token``. Access tokens live ``access_ttl`` seconds (300 by default); a
  refresh token is good once, and a used one is refused (``invalid_grant``) and revokes the grant.
  A call whose caller hangs up while the endpoint is slow (``token_delay_seconds``) issues
  nothing (counted in the stats as ``abandoned_token_calls``).

The API (``Authorization: Bearer <access token>``): ``GET /messaging/me`` → ``{"account"}``;
``GET /messaging/rsvps?cursor=`` → ``{"rsvps", "next_cursor"}`` (``page_size`` a page);
``POST /messaging/messages`` → ``202 {"batch_id", "accepted"}``, honouring ``Idempotency-Key``.

Control (no auth):

* ``POST /messaging/_control`` ``{"invalid_grant"?: bool, "token_delay_seconds"?: number,
  "messages_delay_seconds"?: number (a batch is stored, then answered that late), "api_401"?:
  bool|int, "messages_fail"?: bool|int, "access_ttl"?: number, "page_size"?: int}``;
* ``GET /messaging/_control/stats``;
* ``POST /messaging/_control/grants`` ``{"client_id", "scopes"?}`` → ``{"access_token",
  "refresh_token", "expires_in", ...}``;
* ``POST /messaging/_control/clients`` ``{"client_id", "client_secret", "name"?, "redirect_uris"?}``;
* ``POST /messaging/_control/rsvps`` ``{"rsvps": [{"guest_id", "response", "updated_at"?}]}``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import secrets
from html import escape
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from tovplus.integrations.payloads import parse_timestamp
from tovplus.partner_sim.answers import error, json_object
from tovplus.partner_sim.messaging_state import (
    ACCOUNT,
    RESPONSES,
    SCOPES,
    Client,
    MessagingState,
    TokenError,
    decode_cursor,
)

PREFIX = "/messaging"


def _page(status: int, title: str, body: str) -> HTMLResponse:
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><link rel='icon' href='data:,'>"
        f"<title>{escape(title)}</title></head><body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status)


def s256(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def _redirect(uri: str, params: dict[str, str]) -> RedirectResponse:
    joiner = "&" if urlsplit(uri).query else "?"
    return RedirectResponse(f"{uri}{joiner}{urlencode(params)}", status_code=303)


class _Authorize:
    """The authorization page: the request's parameters checked the same way on GET and POST."""

    def __init__(self, state: MessagingState) -> None:
        self.state = state

    def _client_and_redirect(self, params: dict[str, str]) -> tuple[Client, str] | HTMLResponse:
        client = self.state.clients.get(params.get("client_id", ""))
        if client is None:
            return _page(
                400, "Unknown application", "<p>No application is registered with this client_id.</p>"
            )
        uri = params.get("redirect_uri", "")
        parts = urlsplit(uri)
        registered = client.redirect_uris
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            return _page(400, "Bad redirect", "<p>redirect_uri must be an absolute http(s) URL.</p>")
        if registered is not None and uri not in registered:
            return _page(400, "Bad redirect", "<p>redirect_uri is not registered for this application.</p>")
        return client, uri

    def _problem(self, params: dict[str, str]) -> tuple[str, str] | None:
        """An RFC 6749 error to send back to the redirect URI, or ``None``."""
        if params.get("response_type") != "code":
            return "unsupported_response_type", "response_type must be code"
        if not params.get("code_challenge") or params.get("code_challenge_method") != "S256":
            return "invalid_request", "PKCE with code_challenge_method=S256 is required"
        scopes = params.get("scope", "").split()
        if any(s not in SCOPES for s in scopes):
            return "invalid_scope", f"scopes are {', '.join(SCOPES)}"
        return None

    async def handle(self, request: Request) -> Response:
        if request.method == "POST":
            form = await request.form()
            params = {k: str(v) for k, v in form.items()}
        else:
            params = dict(request.query_params)
        checked = self._client_and_redirect(params)
        if isinstance(checked, HTMLResponse):
            return checked
        client, uri = checked
        back = {"state": params["state"]} if params.get("state") else {}
        problem = self._problem(params)
        if problem is not None:
            return _redirect(uri, {"error": problem[0], "error_description": problem[1], **back})
        if request.method == "GET":
            return self._ask(client, params)
        if params.get("decision") != "allow":
            return _redirect(uri, {"error": "access_denied", **back})
        scopes = tuple(params.get("scope", "").split()) or SCOPES
        code = self.state.issue_code(client.client_id, uri, params["code_challenge"], scopes)
        return _redirect(uri, {"code": code, **back})

    def _ask(self, client: Client, params: dict[str, str]) -> HTMLResponse:
        keep = ("response_type", "client_id", "redirect_uri", "state", "scope", "code_challenge")
        hidden = "".join(
            f"<input type='hidden' name='{k}' value='{escape(params.get(k, ''), quote=True)}'>" for k in keep
        )
        hidden += "<input type='hidden' name='code_challenge_method' value='S256'>"
        body = (
            f"<p>{escape(client.name)} asks to send messages to your guests and read their RSVPs.</p>"
            f"<form method='post'>{hidden}"
            "<button type='submit' name='decision' value='allow'>Allow</button> "
            "<button type='submit' name='decision' value='deny'>Deny</button></form>"
        )
        return _page(200, f"Allow {client.name} to send messages and read RSVPs?", body)


def _client_auth(request: Request, form: dict[str, str]) -> tuple[str, str] | None:
    """``(client_id, client_secret)`` from HTTP Basic (form-encoded parts) or the form body."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, sep, secret = decoded.partition(":")
        return (unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))) if sep else None
    if form.get("client_id") and "client_secret" in form:
        return form["client_id"], form["client_secret"]
    return None


class _Routes:
    def __init__(self, state: MessagingState) -> None:
        self.state = state

    async def token(self, request: Request) -> Response:
        with self.state.lock:
            self.state.counters.token_requests += 1
        if self.state.faults.token_delay_seconds:
            await asyncio.sleep(self.state.faults.token_delay_seconds)
        try:
            form = {k: str(v) for k, v in (await request.form()).items()}
        except ClientDisconnect:  # the caller hung up while it waited: nothing is issued
            with self.state.lock:
                self.state.counters.abandoned_token_calls += 1
            return Response(status_code=499)
        try:
            answer = self._grant(request, form)
        except TokenError as exc:
            return JSONResponse(
                {"error": exc.error, "error_description": exc.description}, status_code=exc.status
            )
        answer.pop("grant_id", None)
        return JSONResponse(answer, headers={"cache-control": "no-store"})

    def _grant(self, request: Request, form: dict[str, str]) -> dict[str, Any]:
        creds = _client_auth(request, form)
        client = self.state.clients.get(creds[0]) if creds else None
        if creds is None or client is None or not secrets.compare_digest(client.client_secret, creds[1]):
            raise TokenError("invalid_client", "unknown client or wrong secret", 401)
        kind = form.get("grant_type")
        if kind == "authorization_code":
            verifier = form.get("code_verifier", "")
            if not verifier:
                raise TokenError("invalid_request", "code_verifier is required")
            return self.state.exchange_code(
                client.client_id, form.get("code", ""), form.get("redirect_uri", ""), s256(verifier)
            )
        if kind == "refresh_token":
            return self.state.refresh(client.client_id, form.get("refresh_token", ""))
        raise TokenError("unsupported_grant_type", "grant_type must be authorization_code or refresh_token")

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.state.check_access(token.strip())

    @staticmethod
    def _unauthorized() -> JSONResponse:
        response = error(401, "invalid or expired access token")
        response.headers["www-authenticate"] = 'Bearer error="invalid_token"'
        return response

    async def me(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        return JSONResponse({"account": ACCOUNT})

    async def rsvps(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        cursor = request.query_params.get("cursor") or None
        after = decode_cursor(cursor) if cursor else 0
        if after is None:
            return error(400, "unknown cursor")
        rows, next_cursor = self.state.rsvp_page(after, cursor)
        return JSONResponse({"rsvps": rows, "next_cursor": next_cursor})

    async def messages(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        if self.state.take_messages_fault():
            return error(503, "the messaging service is unavailable")
        body = await json_object(request)
        problem = _message_problem(body)
        if problem or body is None:
            return error(422, problem or "send a JSON object")
        kept = {k: body[k] for k in ("sender_name", "message", "recipients")}
        status, answer = self.state.receive_messages(request.headers.get("idempotency-key"), kept)
        if self.state.faults.messages_delay_seconds:  # stored first, answered late: a sender may die
            await asyncio.sleep(self.state.faults.messages_delay_seconds)
        return JSONResponse(answer, status_code=status)

    # --- control ----------------------------------------------------------------------------

    async def control(self, request: Request) -> Response:
        body = await json_object(request)
        if body is None:
            return error(400, "send a JSON object")
        problem = _control_problem(body)
        if problem:
            return error(422, problem)
        s = self.state
        with s.lock:
            for key in ("invalid_grant", "api_401", "messages_fail"):
                if key in body:
                    setattr(s.faults, key, body[key])
            for key in ("token_delay_seconds", "messages_delay_seconds"):
                if key in body:
                    setattr(s.faults, key, float(body[key]))
            if "access_ttl" in body:
                s.access_ttl = float(body["access_ttl"])
            if "page_size" in body:
                s.page_size = int(body["page_size"])
        return JSONResponse(s.snapshot()["faults"] | {"access_ttl": s.access_ttl, "page_size": s.page_size})

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.state.snapshot())

    async def grants(self, request: Request) -> Response:
        body = await json_object(request)
        client_id = body.get("client_id") if body else None
        if not isinstance(client_id, str) or client_id not in self.state.clients:
            return error(422, 'send {"client_id": <a registered client>}')
        scopes = body.get("scopes", list(SCOPES)) if body else list(SCOPES)
        if not isinstance(scopes, list) or not scopes or any(s not in SCOPES for s in scopes):
            return error(422, f"scopes must be a list of {', '.join(SCOPES)}")
        return JSONResponse(self.state.mint_grant(client_id, tuple(scopes)))

    async def clients(self, request: Request) -> Response:
        body = await json_object(request) or {}
        client_id, secret, name = (
            body.get("client_id"),
            body.get("client_secret"),
            body.get("name", "TOV Plus"),
        )
        uris = body.get("redirect_uris")
        if not (isinstance(client_id, str) and isinstance(secret, str) and isinstance(name, str)) or not (
            client_id and secret and name
        ):
            return error(422, 'send {"client_id": str, "client_secret": str, "name"?: str}')
        if uris is not None and (not isinstance(uris, list) or not all(isinstance(u, str) for u in uris)):
            return error(422, "redirect_uris must be a list of URLs")
        with self.state.lock:
            self.state.clients[client_id] = Client(client_id, secret, name, uris)
        return JSONResponse({"client_id": client_id})

    async def add_rsvps(self, request: Request) -> Response:
        body = await json_object(request)
        items = body.get("rsvps") if body else None
        if not isinstance(items, list) or not all(_rsvp_ok(i) for i in items):
            return error(422, 'send {"rsvps": [{"guest_id": str, "response": "yes"|"no"|"maybe"}]}')
        for item in items:
            self.state.upsert_rsvp(item["guest_id"], item["response"], item.get("updated_at"))
        return JSONResponse({"upserted": len(items)})


def _rsvp_ok(item: Any) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("guest_id"), str) or not item["guest_id"]:
        return False
    stamp = item.get("updated_at")
    return item.get("response") in RESPONSES and (stamp is None or parse_timestamp(stamp) is not None)


def _message_problem(body: dict[str, Any] | None) -> str | None:
    if body is None:
        return "send a JSON object"
    if not isinstance(body.get("sender_name"), str) or not isinstance(body.get("message"), str):
        return "sender_name and message must be strings"
    recipients = body.get("recipients")
    if not isinstance(recipients, list) or not recipients:
        return "recipients must be a non-empty list"
    for r in recipients:
        if (
            not isinstance(r, dict)
            or not isinstance(r.get("guest_id"), str)
            or not isinstance(r.get("name"), str)
        ):
            return "each recipient needs a guest_id and a name"
        if r.get("email") is not None and not isinstance(r["email"], str):
            return "a recipient's email must be a string or null"
    return None


def _control_problem(body: dict[str, Any]) -> str | None:
    known = {
        "invalid_grant",
        "token_delay_seconds",
        "messages_delay_seconds",
        "api_401",
        "messages_fail",
        "access_ttl",
        "page_size",
    }
    unknown = sorted(set(body) - known)
    if unknown:
        return f"unknown switches: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
    if "invalid_grant" in body and not isinstance(body["invalid_grant"], bool):
        return "invalid_grant must be true or false"
    for key in ("api_401", "messages_fail"):
        value = body.get(key, False)
        if not isinstance(value, bool) and (not isinstance(value, int) or value < 0):
            return f"{key} must be true, false or a number of requests"
    for key in ("token_delay_seconds", "messages_delay_seconds", "access_ttl"):
        value = body.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            return f"{key} must be a non-negative number"
    size = body.get("page_size", 1)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 500:
        return "page_size must be an integer from 1 to 500"
    return None


def messaging_mount(state: MessagingState) -> Mount:
    """The messaging partner's routes under ``/messaging``, over ``state``."""
    h = _Routes(state)
    return Mount(
        PREFIX,
        routes=[
            Route("/oauth/authorize", _Authorize(state).handle, methods=["GET", "POST"]),
            Route("/oauth/token", h.token, methods=["POST"]),
            Route("/me", h.me, methods=["GET"]),
            Route("/rsvps", h.rsvps, methods=["GET"]),
            Route("/messages", h.messages, methods=["POST"]),
            Route("/_control", h.control, methods=["POST"]),
            Route("/_control/stats", h.stats, methods=["GET"]),
            Route("/_control/grants", h.grants, methods=["POST"]),
            Route("/_control/clients", h.clients, methods=["POST"]),
            Route("/_control/rsvps", h.add_rsvps, methods=["POST"]),
        ],
    )
