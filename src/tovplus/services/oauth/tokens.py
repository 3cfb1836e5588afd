"""An OAuth2 connection's grant: its tokens sealed at rest, and the contract's ``authorization`` view.

Tokens are sealed like every secret, bound to their row and field (AAD
``connection:<id>:oauth.access_token`` and ``...:oauth.refresh_token``). Every write of them bumps
``token_version``, which the refresh lease (``refresh.py``) fences on. No function here hands a
refresh token to an adapter: ``refresh.py`` is the only reader of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tovplus.db.models import OAuthGrant
from tovplus.db.types import utcnow
from tovplus.integrations.auth import AuthorizationStatus
from tovplus.integrations.contract import Adapter
from tovplus.integrations.payloads import format_timestamp
from tovplus.integrations.redaction import scrubber
from tovplus.runtime.keyring import Keyring, Sealed

ACCESS_FIELD = "oauth.access_token"
REFRESH_FIELD = "oauth.refresh_token"


def token_aad(connection_id: str, field_key: str) -> str:
    """What a grant token's ciphertext is bound to (the same scheme as connection secrets)."""
    return f"connection:{connection_id}:{field_key}"


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What a token endpoint answered; the values never show in a repr."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()


def seal_tokens(grant: OAuthGrant, keyring: Keyring, tokens: TokenSet) -> None:
    """Seal ``tokens`` into ``grant`` and bump its version (a kept refresh token stays when none came)."""
    scrubber.remember(tokens.access_token)
    access = keyring.seal(tokens.access_token, token_aad(grant.connection_id, ACCESS_FIELD))
    grant.access_key_id, grant.access_nonce, grant.access_ciphertext = (
        access.key_id,
        access.nonce,
        access.ciphertext,
    )
    if tokens.refresh_token is not None:
        scrubber.remember(tokens.refresh_token)
        refresh = keyring.seal(tokens.refresh_token, token_aad(grant.connection_id, REFRESH_FIELD))
        grant.refresh_key_id, grant.refresh_nonce = refresh.key_id, refresh.nonce
        grant.refresh_ciphertext = refresh.ciphertext
    grant.expires_at = tokens.expires_at
    if tokens.scopes:
        grant.scopes = list(tokens.scopes)
    grant.token_version = (grant.token_version or 0) + 1
    grant.updated_at = utcnow()


def clear_tokens(grant: OAuthGrant) -> None:
    """Forget both tokens (a refused grant, a revoked connection); bumps the version."""
    grant.access_key_id = grant.access_nonce = grant.access_ciphertext = None
    grant.refresh_key_id = grant.refresh_nonce = grant.refresh_ciphertext = None
    grant.expires_at = None
    grant.token_version = (grant.token_version or 0) + 1
    grant.updated_at = utcnow()


def store_grant(
    session: Session, keyring: Keyring, connection_id: str, tokens: TokenSet, *, actor: str
) -> OAuthGrant:
    """Write a fresh grant after a code exchange (creating or replacing it): status authorized."""
    grant = session.get(OAuthGrant, connection_id)
    if grant is None:
        grant = OAuthGrant(connection_id=connection_id, scopes=[], token_version=0, lease_fence=0)
        session.add(grant)
    seal_tokens(grant, keyring, tokens)
    grant.status = AuthorizationStatus.AUTHORIZED
    grant.lease_owner = grant.lease_expires_at = None
    grant.authorized_at, grant.authorized_by = utcnow(), actor
    grant.last_error = None
    return grant


def destroy_grant(session: Session, connection_id: str) -> int:
    """Delete a connection's grant and its tokens (revocation). Returns how many tokens went."""
    grant = session.get(OAuthGrant, connection_id)
    if grant is None:
        return 0
    held = int(grant.access_ciphertext is not None) + int(grant.refresh_ciphertext is not None)
    session.delete(grant)
    return held


def _open(
    keyring: Keyring, aad: str, key_id: str | None, nonce: bytes | None, ciphertext: bytes | None
) -> str | None:
    if key_id is None or nonce is None or ciphertext is None:
        return None
    value = keyring.open(Sealed(key_id, nonce, ciphertext), aad)
    scrubber.remember(value)
    return value


def open_access_token(grant: OAuthGrant, keyring: Keyring) -> str | None:
    """The grant's access token, opened (``None`` when it has none)."""
    aad = token_aad(grant.connection_id, ACCESS_FIELD)
    return _open(keyring, aad, grant.access_key_id, grant.access_nonce, grant.access_ciphertext)


def open_refresh_token(grant: OAuthGrant, keyring: Keyring) -> str | None:
    """The grant's refresh token, opened: for the refresher only, never for an adapter."""
    aad = token_aad(grant.connection_id, REFRESH_FIELD)
    return _open(keyring, aad, grant.refresh_key_id, grant.refresh_nonce, grant.refresh_ciphertext)


def grant_status(grant: OAuthGrant | None) -> AuthorizationStatus:
    """Where a grant stands; no grant is ``pending``."""
    return AuthorizationStatus(grant.status) if grant is not None else AuthorizationStatus.PENDING


def grant_view(grant: OAuthGrant | None, adapter: Adapter | None) -> dict[str, Any] | None:
    """The contract's ``authorization`` object: ``None`` for an api-key adapter."""
    if adapter is None or adapter.oauth2 is None:
        return None
    scopes = list(grant.scopes) if grant is not None and grant.scopes else list(adapter.oauth2.scopes)
    expires_at = (
        grant.expires_at if grant is not None and grant.status == AuthorizationStatus.AUTHORIZED else None
    )
    return {
        "status": grant_status(grant).value,
        "scopes": scopes,
        "expires_at": format_timestamp(expires_at) if expires_at else None,
    }


def reseal_grants(session: Session, keyring: Keyring) -> int:
    """Re-seal every grant token not under the primary key (``secrets reencrypt``). Returns how many."""
    count = 0
    stale = (
        select(OAuthGrant)
        .where(
            or_(
                OAuthGrant.access_key_id != keyring.primary_id,
                OAuthGrant.refresh_key_id != keyring.primary_id,
            )
        )
        .with_for_update()  # PostgreSQL: a refresh committing meanwhile is not overwritten with old tokens
    )
    for grant in session.scalars(stale):
        access, refresh = open_access_token(grant, keyring), open_refresh_token(grant, keyring)
        version = grant.token_version
        if access is not None:
            seal_tokens(grant, keyring, TokenSet(access, refresh, grant.expires_at))
            grant.token_version = version  # the same tokens: a re-seal fences nobody out
            count += 1
    return count
