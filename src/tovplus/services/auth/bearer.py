"""Authenticating a request end to end: resolve the caller, record the (coalesced) use."""

from __future__ import annotations

from tovplus.runtime import Runtime
from tovplus.services.auth import Caller, authenticate, record_use


def authenticate_bearer(rt: Runtime, token: str | None) -> Caller:
    """Resolve a bearer token to a caller, or raise ``Unauthenticated``/``Forbidden``."""
    with rt.db.read() as session:
        auth = authenticate(session, token)
    if auth.touch_key_id or auth.touch_token_hash:
        with rt.db.write() as session:
            record_use(session, auth)
    return auth.caller
