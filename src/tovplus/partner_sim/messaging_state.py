"""The simulated messaging partner's data: OAuth clients, codes, grants with rotating refresh
tokens, RSVPs in a change log, messages received, fault switches and counters.

Everything lives in memory behind one lock; ``messaging.py`` is the HTTP side. Time is injectable
(``clock``) so tests can expire access tokens without waiting. Like real providers, a refresh
token is good for one use: it rotates on every refresh, and presenting a used one again is
refused and revokes the whole grant.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DEMO_CLIENT_ID = "tovplus-demo"
DEMO_CLIENT_SECRET = "tovplus-demo-secret"  # noqa: S105 - the simulator's published demo client
SCOPES = ("messages.send", "rsvps.read")
RESPONSES = ("yes", "no", "maybe")
CODE_TTL_SECONDS = 600.0
ACCOUNT = "Olena & Taras (demo messaging account)"


class TokenError(Exception):
    """A token request the endpoint refuses: ``error`` is the RFC 6749 code."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass
class Client:
    client_id: str
    client_secret: str = field(repr=False)
    name: str = "TOV Plus"
    #: Registered redirect URIs; ``None`` accepts any absolute http(s) URL.
    redirect_uris: list[str] | None = None


@dataclass
class Code:
    client_id: str
    redirect_uri: str
    challenge: str
    scopes: tuple[str, ...]
    expires_at: float
    used: bool = False
    grant_id: str | None = None


@dataclass
class Grant:
    grant_id: str
    client_id: str
    scopes: tuple[str, ...]
    refresh_token: str = field(repr=False)
    revoked: bool = False
    refreshes: int = 0
    #: Every refresh token this grant ever had but the current one (a reuse revokes the grant).
    used_refresh_tokens: set[str] = field(default_factory=set, repr=False)
    #: How many token sets this grant was issued (the current refresh token's generation).
    generation: int = 0
    #: When the current token set was issued (the simulator's clock).
    issued_at: float = 0.0


@dataclass
class Faults:
    invalid_grant: bool = False
    token_delay_seconds: float = 0.0
    #: ``POST /messages`` stores the batch, then answers this many seconds late.
    messages_delay_seconds: float = 0.0
    #: ``True``: the API refuses every token; a number: the next that many requests.
    api_401: bool | int = False
    #: ``True``: ``POST /messages`` answers 503; a number: the next that many requests.
    messages_fail: bool | int = False


@dataclass
class Counters:
    #: Calls to the token endpoint, and those whose caller hung up before they were answered.
    token_requests: int = 0
    abandoned_token_calls: int = 0
    code_exchanges: int = 0
    refresh_attempts: int = 0
    refreshes: int = 0
    refused_refreshes: int = 0
    reuse_attempts: int = 0
    api_requests: int = 0
    api_rejected: int = 0
    message_requests: int = 0
    message_replays: int = 0


def _stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_cursor(seq: int) -> str:
    """An opaque cursor for "after change ``seq``"."""
    return base64.urlsafe_b64encode(f"after:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """The change a cursor points after; ``None`` for one this simulator never issued."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    kind, _, number = text.partition(":")
    return int(number) if kind == "after" and number.isdigit() else None


class MessagingState:
    """One simulated messaging partner."""

    def __init__(self, *, clock: Callable[[], float] = time.time, access_ttl: float = 300.0) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.access_ttl = access_ttl
        self.page_size = 2
        self.clients: dict[str, Client] = {DEMO_CLIENT_ID: Client(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)}
        self.codes: dict[str, Code] = {}
        self.grants: dict[str, Grant] = {}
        self.refresh_index: dict[str, str] = {}  # every refresh token ever issued -> grant id
        self.generations: dict[str, int] = {}  # every refresh token ever issued -> its generation
        #: One entry per refresh request naming a known token: ``{"grant_id", "generation" (of the
        #: token presented), "current" (the grant's generation then), "age" (seconds since the
        #: current tokens were issued), "at", "ok"}``; two entries of one generation = a reuse.
        self.refresh_log: list[dict[str, Any]] = []
        self.access_tokens: dict[str, tuple[str, float]] = {}  # token -> (grant id, expires at)
        self.rsvps: dict[str, dict[str, Any]] = {}  # guest id -> {"response", "updated_at", "seq"}
        self.seq = 0
        self.messages: list[dict[str, Any]] = []
        #: The ``cursor`` of every ``GET /rsvps`` answered, in order (``None``: from the start).
        self.rsvp_cursors: list[str | None] = []
        self.answers: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.faults = Faults()
        self.counters = Counters()

    # --- the authorization code grant ------------------------------------------------------

    def issue_code(self, client_id: str, redirect_uri: str, challenge: str, scopes: tuple[str, ...]) -> str:
        code = "gm_code_" + secrets.token_urlsafe(18)
        with self.lock:
            self.codes[code] = Code(
                client_id, redirect_uri, challenge, scopes, self.clock() + CODE_TTL_SECONDS
            )
        return code

    def exchange_code(self, client_id: str, code: str, redirect_uri: str, challenge: str) -> dict[str, Any]:
        """Tokens for a code (``challenge`` is S256 of the verifier sent); single use."""
        with self.lock:
            found = self.codes.get(code)
            if found is None or found.client_id != client_id:
                raise TokenError("invalid_grant", "unknown authorization code")
            if found.used:  # RFC 6749 4.1.2: a reused code revokes what it gave
                if found.grant_id and found.grant_id in self.grants:
                    self.grants[found.grant_id].revoked = True
                raise TokenError("invalid_grant", "authorization code already used")
            if found.expires_at < self.clock():
                raise TokenError("invalid_grant", "authorization code expired")
            if found.redirect_uri != redirect_uri:
                raise TokenError("invalid_grant", "redirect_uri does not match the authorization request")
            if not secrets.compare_digest(found.challenge, challenge):
                raise TokenError("invalid_grant", "code_verifier does not match the code_challenge")
            found.used = True
            self.counters.code_exchanges += 1
            answer = self._new_grant(client_id, found.scopes)
            found.grant_id = answer["grant_id"]
            return answer

    def mint_grant(self, client_id: str, scopes: tuple[str, ...] = SCOPES) -> dict[str, Any]:
        """A grant as if the user had allowed access (``POST /_control/grants``)."""
        with self.lock:
            return self._new_grant(client_id, scopes)

    def _new_grant(self, client_id: str, scopes: tuple[str, ...]) -> dict[str, Any]:
        grant = Grant("grt_" + secrets.token_hex(6), client_id, scopes, "")
        self.grants[grant.grant_id] = grant
        return self._issue(grant)

    def _issue(self, grant: Grant) -> dict[str, Any]:
        """New access and refresh tokens for ``grant`` (the old refresh token becomes used)."""
        if grant.refresh_token:
            grant.used_refresh_tokens.add(grant.refresh_token)
        access = "gm_at_" + secrets.token_urlsafe(24)
        grant.refresh_token = "gm_rt_" + secrets.token_urlsafe(24)
        grant.generation += 1
        grant.issued_at = self.clock()
        self.refresh_index[grant.refresh_token] = grant.grant_id
        self.generations[grant.refresh_token] = grant.generation
        self.access_tokens[access] = (grant.grant_id, self.clock() + self.access_ttl)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(self.access_ttl),
            "refresh_token": grant.refresh_token,
            "scope": " ".join(grant.scopes),
            "grant_id": grant.grant_id,
        }

    def refresh(self, client_id: str, refresh_token: str) -> dict[str, Any]:
        """Rotate: new tokens for the current refresh token; a used one revokes the grant."""
        with self.lock:
            self.counters.refresh_attempts += 1
            grant = self.grants.get(self.refresh_index.get(refresh_token, ""))
            if grant is None or grant.client_id != client_id:
                self.counters.refused_refreshes += 1
                raise TokenError("invalid_grant", "unknown refresh token")
            now = self.clock()
            entry = {
                "grant_id": grant.grant_id,
                "generation": self.generations[refresh_token],
                "current": grant.generation,
                "age": round(now - grant.issued_at, 4),
                "at": now,
                "ok": False,
            }
            self.refresh_log.append(entry)
            if refresh_token in grant.used_refresh_tokens:
                self.counters.reuse_attempts += 1
                self.counters.refused_refreshes += 1
                grant.revoked = True
                raise TokenError("invalid_grant", "refresh token already used: the grant is revoked")
            if grant.revoked or self.faults.invalid_grant:
                self.counters.refused_refreshes += 1
                raise TokenError("invalid_grant", "the grant is revoked")
            grant.refreshes += 1
            self.counters.refreshes += 1
            entry["ok"] = True
            return self._issue(grant)

    def check_access(self, token: str) -> bool:
        """Whether ``token`` is a live access token (counting the API request)."""
        with self.lock:
            self.counters.api_requests += 1
            found = self.access_tokens.get(token)
            grant = self.grants.get(found[0]) if found else None
            ok = found is not None and grant is not None and not grant.revoked and found[1] > self.clock()
            if self.faults.api_401:
                ok = False
                if not isinstance(self.faults.api_401, bool):
                    self.faults.api_401 -= 1
            if not ok:
                self.counters.api_rejected += 1
            return ok

    # --- RSVPs and messages ---------------------------------------------------------------------

    def upsert_rsvp(self, guest_id: str, response: str, updated_at: str | None = None) -> None:
        with self.lock:
            self.seq += 1
            stamp = updated_at or _stamp(self.clock())
            self.rsvps[guest_id] = {"response": response, "updated_at": stamp, "seq": self.seq}

    def rsvp_page(self, after: int, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """The RSVPs changed after change ``after`` (asked as ``cursor``), oldest change first, one page."""
        with self.lock:
            self.rsvp_cursors.append(cursor)
            changed = sorted(
                ((r["seq"], guest_id, r) for guest_id, r in self.rsvps.items() if r["seq"] > after),
                key=lambda item: item[0],
            )
            page = changed[: self.page_size]
            rows = [
                {"guest_id": g, "response": r["response"], "updated_at": r["updated_at"]} for _, g, r in page
            ]
            more = len(changed) > len(page)
            return rows, (encode_cursor(page[-1][0]) if more else None)

    def take_messages_fault(self) -> bool:
        with self.lock:
            self.counters.message_requests += 1
            failing = bool(self.faults.messages_fail)
            if failing and not isinstance(self.faults.messages_fail, bool):
                self.faults.messages_fail -= 1
            return failing

    def receive_messages(self, key: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Store one batch per ``Idempotency-Key``; a repeat answers the first answer again."""
        with self.lock:
            if key and ("messages", key) in self.answers:
                self.counters.message_replays += 1
                return self.answers[("messages", key)]
            batch_id = "bat_" + secrets.token_hex(6)
            self.messages.append(
                {"batch_id": batch_id, "idempotency_key": key, "received_at": _stamp(self.clock()), **body}
            )
            answer = (202, {"batch_id": batch_id, "accepted": len(body["recipients"])})
            if key:
                self.answers[("messages", key)] = answer
            return answer

    # --- the debug view -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            c = self.counters
            return {
                "token_requests": c.token_requests,
                "abandoned_token_calls": c.abandoned_token_calls,
                "code_exchanges": c.code_exchanges,
                "refresh_attempts": c.refresh_attempts,
                "refreshes": c.refreshes,
                "refused_refreshes": c.refused_refreshes,
                "reuse_attempts": c.reuse_attempts,
                "api_requests": c.api_requests,
                "api_rejected": c.api_rejected,
                "refresh_log": [dict(e) for e in self.refresh_log],
                "grants": [
                    {
                        "grant_id": g.grant_id,
                        "client_id": g.client_id,
                        "scopes": list(g.scopes),
                        "revoked": g.revoked,
                        "refreshes": g.refreshes,
                        "generation": g.generation,
                    }
                    for g in self.grants.values()
                ],
                "message_requests": c.message_requests,
                "message_replays": c.message_replays,
                "messages": [dict(m) for m in self.messages],
                "idempotency_keys": [m["idempotency_key"] for m in self.messages],
                "rsvps": len(self.rsvps),
                "rsvp_cursors": list(self.rsvp_cursors),
                "clients": sorted(self.clients),
                "access_ttl": self.access_ttl,
                "page_size": self.page_size,
                "faults": {
                    "invalid_grant": self.faults.invalid_grant,
                    "token_delay_seconds": self.faults.token_delay_seconds,
                    "messages_delay_seconds": self.faults.messages_delay_seconds,
                    "api_401": self.faults.api_401,
                    "messages_fail": self.faults.messages_fail,
                },
            }
