"""An in-test OAuth2 partner: an authorization page (Allow / Deny) and a token endpoint, on loopback.

It checks what a real one checks: the client's id and secret (HTTP basic), the code it issued for
that redirect URI, once, and the PKCE verifier against the S256 challenge it was given. Tokens are
random and recorded, so tests can look for them where they must never appear.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "tov-demo-client"
CLIENT_SECRET = "cs_demo_SECRET_value_0123456789"


@dataclass
class Issued:
    code: str
    client_id: str
    redirect_uri: str
    challenge: str | None
    scope: str


@dataclass
class PartnerState:
    """What the fake partner saw and gave out; ``token_mode`` switches its token endpoint."""

    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    codes: dict[str, Issued] = field(default_factory=dict)
    access_tokens: list[str] = field(default_factory=list)
    refresh_tokens: list[str] = field(default_factory=list)
    #: "ok", "invalid_grant" (400 with an OAuth error), "error500" or "garbage" (200, not JSON)
    token_mode: str = "ok"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue_code(self, params: dict[str, str]) -> str:
        code = "code_" + secrets.token_urlsafe(16)
        with self.lock:
            self.codes[code] = Issued(
                code,
                params.get("client_id", ""),
                params.get("redirect_uri", ""),
                params.get("code_challenge"),
                params.get("scope", ""),
            )
        return code

    @property
    def secrets_given(self) -> list[str]:
        """Every token value handed out (and the client secret): none may show anywhere of ours."""
        return [*self.access_tokens, *self.refresh_tokens, CLIENT_SECRET]


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def _handler(state: PartnerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _send(self, status: int, body: str, content_type: str = "application/json") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            params = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/oauth/authorize":
                state.authorize_requests.append(params)
                self._authorize_page(params)
            elif parts.path == "/oauth/decide":
                self._decide(params)
            elif parts.path == "/favicon.ico":  # what a browser asks every page's host for
                self._send(200, "", "image/x-icon")
            else:
                self._send(404, '{"error": "not_found"}')

        def _authorize_page(self, params: dict[str, str]) -> None:
            allow = urlencode({**params, "decision": "allow"})
            deny = urlencode({**params, "decision": "deny"})
            page = (
                "<!doctype html><title>Demo Messenger: sign in</title><h1>Demo Messenger</h1>"
                f"<p>TOV Plus asks for: {html.escape(params.get('scope', ''))}</p>"
                f'<a id="allow" href="/oauth/decide?{html.escape(allow)}">Allow</a> '
                f'<a id="deny" href="/oauth/decide?{html.escape(deny)}">Deny</a>'
            )
            self._send(200, page, "text/html; charset=utf-8")

        def _decide(self, params: dict[str, str]) -> None:
            back = params.get("redirect_uri", "")
            if params.get("decision") == "allow":
                query = {"code": state.issue_code(params), "state": params.get("state", "")}
            else:
                query = {"error": "access_denied", "state": params.get("state", "")}
            self.send_response(302)
            self.send_header("location", f"{back}?{urlencode(query)}")
            self.send_header("content-length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/oauth/token":
                self._send(404, '{"error": "not_found"}')
                return
            length = int(self.headers.get("content-length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            form["_authorization"] = self.headers.get("authorization", "")
            state.token_requests.append(form)
            if state.token_mode == "error500":
                self._send(500, "oops", "text/plain")
                return
            if state.token_mode == "garbage":
                self._send(200, "<html>a gateway's page</html>", "text/html")
                return
            problem, issued = self._problem(form)
            if state.token_mode != "ok":
                problem = "invalid_grant"
            if problem or issued is None:
                self._send(400, f'{{"error": "{problem}"}}')
                return
            access, refresh = "at_" + secrets.token_urlsafe(24), "rt_" + secrets.token_urlsafe(24)
            state.access_tokens.append(access)
            state.refresh_tokens.append(refresh)
            self._send(
                200,
                f'{{"access_token": "{access}", "refresh_token": "{refresh}", "token_type": "Bearer", '
                f'"expires_in": 600, "scope": "{issued.scope}"}}',
            )

        def _problem(self, form: dict[str, str]) -> tuple[str | None, Issued | None]:
            basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if form["_authorization"] != f"Basic {basic}":
                return "invalid_client", None
            if form.get("grant_type") != "authorization_code":
                return "unsupported_grant_type", None
            with state.lock:
                issued = state.codes.pop(form.get("code", ""), None)  # a code works once
            if issued is None or issued.redirect_uri != form.get("redirect_uri"):
                return "invalid_grant", None
            if issued.challenge and _s256(form.get("code_verifier", "")) != issued.challenge:
                return "invalid_grant", None
            return None, issued

    return Handler


class FakePartner:
    """``with FakePartner() as partner: partner.url`` — the partner's OAuth base URL."""

    def __init__(self) -> None:
        self.state = PartnerState()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakePartner:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
