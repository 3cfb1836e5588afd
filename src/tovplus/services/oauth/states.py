"""Starting an authorization: a single-use ``state`` bound to a user and a connection, with PKCE.

Only the state's SHA-256 is stored; the PKCE verifier is sealed (AAD ``oauth-state:<hash>``). The
authorization URL is built by Authlib from the adapter's ``OAuth2Auth`` and the connection's config;
the partner sends the planner's browser back to :func:`redirect_uri`, where ``callback.py`` takes over.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete
from sqlalchemy.orm import Session

from tovplus.db.models import Connection, OAuthState
from tovplus.db.states import ConnectionState
from tovplus.db.types import utcnow
from tovplus.errors import Conflict, ConnectionRevoked, FieldIssue, InvalidInput, ValidationFailed
from tovplus.integrations.auth import OAuth2Auth
from tovplus.integrations.contract import Adapter
from tovplus.integrations.redaction import scrubber
from tovplus.integrations.urls import check_url
from tovplus.runtime import Runtime
from tovplus.runtime.keyring import Keyring, Sealed
from tovplus.services.oauth.authlib_client import OAuth2Client
from tovplus.services.oauth.clients import client_credentials
from tovplus.settings import Settings

#: How long a planner has between "Connect" and the partner sending them back.
STATE_TTL = timedelta(minutes=10)
CALLBACK_PATH = "/v1/integrations/oauth/callback"
MAX_RETURN_TO = 2000


def redirect_uri(settings: Settings) -> str:
    """Where the partner sends the browser back: ``{public_base_url}/v1/integrations/oauth/callback``."""
    return settings.public_base_url.rstrip("/") + CALLBACK_PATH


def state_hash(state: str) -> str:
    """What is stored of a state (the state itself never is)."""
    return hashlib.sha256(state.encode()).hexdigest()


def verifier_aad(hashed: str) -> str:
    return f"oauth-state:{hashed}"


def check_return_to(value: object) -> str | None:
    """A same-site path to come back to (``/…``, not ``//…``), or ``None``; 422 otherwise."""
    if value is None:
        return None
    ok = (
        isinstance(value, str)
        and value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
        and len(value) <= MAX_RETURN_TO
        and all(32 < ord(c) < 127 for c in value)
    )
    if not ok:
        message = "return_to must be a path on this site, starting with one /."
        raise InvalidInput(message, fields=[FieldIssue("return_to", "invalid", message)])
    return str(value)


def oauth2_of(adapter: Adapter | None) -> OAuth2Auth:
    """The adapter's OAuth2 declaration; 409 for an api-key adapter (or none installed)."""
    if adapter is None or adapter.oauth2 is None:
        raise Conflict(
            "This integration does not connect with OAuth2: its credentials are typed into its settings.",
            code="not_oauth2",
        )
    return adapter.oauth2


def partner_urls(adapter: Adapter, config: dict[str, Any], *, allow_private: bool) -> tuple[str, str]:
    """``(authorize_url, token_url)`` from the connection's config; 409 while the settings they need
    are missing or not URLs."""
    auth = oauth2_of(adapter)
    missing = sorted(k for k in auth.config_keys() if not config.get(k))
    if not missing:
        urls = auth.urls(config)
        if all(check_url(u, allow_private=allow_private) is None for u in urls):
            return urls
        missing = sorted(auth.config_keys())
    fields = [FieldIssue(f"config.{k}", "required", "Set this first.") for k in missing]
    raise ValidationFailed(
        f"Fill in {', '.join(missing)} before connecting with {adapter.name}.", fields=fields
    )


def not_configured(adapter: Adapter) -> Conflict:
    """409 for an adapter whose OAuth client the operator has not set (never a broken redirect)."""
    message = (
        f"{adapter.name} cannot be connected yet: the operator has not set up its OAuth client "
        f"(`tovplus oauth set-client {adapter.integration_key}`)."
    )
    return Conflict(
        message,
        code="client_not_configured",
        fields=[FieldIssue("authorization", "client_not_configured", message)],
    )


def begin_authorization(
    session: Session, rt: Runtime, connection: Connection, user_id: str, return_to: str | None
) -> str:
    """Store a new state for ``connection`` and ``user_id``; return the partner's authorization URL.

    The caller has checked that the user may manage the connection. 409 for an api-key adapter,
    a revoked connection or an adapter whose client is not configured; 422 for a bad ``return_to``.
    """
    target = check_return_to(return_to)
    adapter = rt.registry.find(connection.integration_key)
    auth = oauth2_of(adapter)
    assert adapter is not None
    if connection.state == ConnectionState.REVOKED:
        raise ConnectionRevoked("This connection is revoked; create a new one.")
    client = client_credentials(session, rt.keyring, adapter.integration_key)
    if client is None:
        raise not_configured(adapter)
    authorize_url, _token_url = partner_urls(
        adapter, dict(connection.config), allow_private=rt.settings.allow_private_urls
    )
    # expired states are refused as if unknown: the connection's old ones can go now
    session.execute(
        delete(OAuthState)
        .where(OAuthState.connection_id == connection.id, OAuthState.expires_at < utcnow())
        .execution_options(synchronize_session=False)
    )
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64) if auth.pkce else None
    hashed = state_hash(state)
    row = OAuthState(
        state_hash=hashed,
        connection_id=connection.id,
        user_id=user_id,
        redirect_uri=redirect_uri(rt.settings),
        return_to=target,
        created_at=utcnow(),
        expires_at=utcnow() + STATE_TTL,
    )
    if verifier is not None:
        sealed = rt.keyring.seal(verifier, verifier_aad(hashed))
        row.verifier_key_id, row.verifier_nonce, row.verifier_ciphertext = (
            sealed.key_id,
            sealed.nonce,
            sealed.ciphertext,
        )
    session.add(row)
    builder = OAuth2Client(
        client_id=client.client_id,
        scope=" ".join(auth.scopes) or None,
        redirect_uri=row.redirect_uri,
        code_challenge_method="S256" if auth.pkce else None,
    )
    try:
        url, _ = builder.create_authorization_url(authorize_url, state=state, code_verifier=verifier)
    finally:
        builder.close()
    return str(url)


def open_verifier(row: OAuthState, keyring: Keyring) -> str | None:
    """The state's PKCE verifier, opened (``None`` when the adapter sends no challenge)."""
    if row.verifier_key_id is None or row.verifier_nonce is None or row.verifier_ciphertext is None:
        return None
    value = keyring.open(
        Sealed(row.verifier_key_id, row.verifier_nonce, row.verifier_ciphertext), verifier_aad(row.state_hash)
    )
    scrubber.remember(value)
    return value


def authorize_origin(rt: Runtime, adapter: Adapter, config: dict[str, Any]) -> str | None:
    """``scheme://host[:port]`` of the partner's authorization page for this config, or ``None``
    while it cannot be built (the page's form may send the browser there: its CSP must allow it)."""
    try:
        authorize_url, _ = partner_urls(adapter, config, allow_private=rt.settings.allow_private_urls)
    except (Conflict, ValidationFailed):
        return None
    parts = urlsplit(authorize_url)
    return f"{parts.scheme}://{parts.netloc}"
