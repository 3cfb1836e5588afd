"""Cookies, CSRF tokens, one-time flash messages and response headers for the pages.

* ``tovplus_session``: the session token (HttpOnly, SameSite=Lax, Secure in production).
* ``tovplus_pre``: a random value set on the sign-in page, so even the sign-in form
  carries a CSRF token before any session exists.
* CSRF tokens are ``HMAC(seed, "csrf")`` where the seed is the session token (or the
  pre-session value): a token is only good with the cookie it was made for.
* ``tovplus_flash``: a one-time message for the next page (POST-redirect-GET),
  encrypted with a key derived from the session token. It can carry an issued
  integration key to show once; without the session cookie it is unreadable. It also
  carries a one-time ticket (``services.auth.issue_ticket``) that the page showing it
  uses up on the server, so a replayed cookie shows nothing (``web.visit``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.requests import Request
from starlette.responses import Response

from tovplus.services.auth import SESSION_COOKIE as SESSION_COOKIE
from tovplus.settings import Settings

PRESESSION_COOKIE = "tovplus_pre"
FLASH_COOKIE = "tovplus_flash"
CSRF_FIELD = "csrf_token"
FLASH_MAX_AGE = 300
MAX_COOKIE_VALUE = 4000
R = TypeVar("R", bound=Response)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def _derive(seed: str, purpose: bytes) -> bytes:
    return hmac.new(seed.encode(), purpose, hashlib.sha256).digest()


def csrf_token_for(seed: str) -> str:
    """The CSRF token that goes with ``seed`` (a session token or pre-session value)."""
    return base64.urlsafe_b64encode(_derive(seed, b"tovplus-csrf")).decode().rstrip("=")


def csrf_ok(seed: str | None, presented: object) -> bool:
    """True when ``presented`` is the CSRF token of ``seed``."""
    if not seed or not isinstance(presented, str) or len(presented) > 100:
        return False
    return hmac.compare_digest(csrf_token_for(seed), presented)


def set_cookie(
    response: Response,
    settings: Settings,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
) -> None:
    """Set an HttpOnly, SameSite=Lax cookie (Secure when the settings say so)."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )


def clear_cookie(response: Response, settings: Settings, name: str) -> None:
    """Delete a cookie set by :func:`set_cookie`."""
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=settings.secure_cookies)


def new_presession() -> str:
    """A random pre-session value for the sign-in form."""
    return secrets.token_urlsafe(24)


# --- flash -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flash:
    """A message for the next page; ``issued_key`` is shown once on ``connection_id``'s page.

    ``ticket`` is the server's one-time ticket for it: the flash is shown only by the page
    that uses the ticket up.
    """

    notice: str | None = None
    error: str | None = None
    issued_key: str | None = None
    connection_id: str | None = None
    ticket: str | None = None
    #: The result of "Test connection" on ``connection_id``'s page, shown next to the button.
    check: str | None = None
    check_ok: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "notice": self.notice,
            "error": self.error,
            "issued_key": self.issued_key,
            "connection_id": self.connection_id,
            "ticket": self.ticket,
            "check": self.check,
            "check_ok": self.check_ok,
        }


def seal_flash(session_token: str, flash: Flash) -> str:
    """Encrypt ``flash`` for the cookie, with a key derived from the session token."""
    key = _derive(session_token, b"tovplus-flash")
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, json.dumps(flash.as_dict()).encode(), b"flash")
    return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def open_flash(session_token: str, value: str | None) -> Flash | None:
    """The flash message of the cookie, or ``None`` when it does not open with this session."""
    if not value or len(value) > MAX_COOKIE_VALUE:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        plain = AESGCM(_derive(session_token, b"tovplus-flash")).decrypt(raw[:12], raw[12:], b"flash")
        data = json.loads(plain)
    except (ValueError, InvalidTag, TypeError):
        return None
    if not isinstance(data, dict):
        return None

    def text(key: str) -> str | None:
        item = data.get(key)
        return item if isinstance(item, str) else None

    check_ok = data.get("check_ok")
    return Flash(
        text("notice"),
        text("error"),
        text("issued_key"),
        text("connection_id"),
        text("ticket"),
        text("check"),
        check_ok if isinstance(check_ok, bool) else None,
    )


# --- headers -----------------------------------------------------------------------------------


def page_headers(response: R) -> R:
    """Headers every page carries: no caching (pages may show a one-time key), CSP, no framing."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def cookie(request: Request, name: str) -> str | None:
    """The request's cookie ``name``, or ``None`` (also when it is too long)."""
    value = request.cookies.get(name)
    if value is None or len(value) > MAX_COOKIE_VALUE:
        return None
    return value
