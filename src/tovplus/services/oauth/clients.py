"""The operator's OAuth clients: one client id and sealed secret per ``oauth2`` adapter.

They come from the operator (``TOVPLUS_OAUTH_CLIENTS`` or ``tovplus oauth set-client``), never from
a planner; the secret is sealed like every secret (AAD ``oauth-client:<integration_key>``) and only
the refresh and code-exchange calls open it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from tovplus.db.models import OAuthClient
from tovplus.db.types import utcnow
from tovplus.integrations.redaction import scrubber
from tovplus.runtime.keyring import Keyring, Sealed


def _client_aad(integration_key: str) -> str:
    return f"oauth-client:{integration_key}"


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """An adapter's OAuth client as the token calls need it."""

    client_id: str
    client_secret: str = field(repr=False)


def set_client(
    session: Session,
    keyring: Keyring,
    integration_key: str,
    client_id: str,
    client_secret: str,
    *,
    actor: str,
) -> None:
    """Store (or replace) the OAuth client of one adapter, its secret sealed."""
    scrubber.remember(client_secret)
    sealed = keyring.seal(client_secret, _client_aad(integration_key))
    row = session.get(OAuthClient, integration_key)
    if row is None:
        row = OAuthClient(integration_key=integration_key)
        session.add(row)
    row.client_id = client_id
    row.secret_key_id, row.secret_nonce, row.secret_ciphertext = (
        sealed.key_id,
        sealed.nonce,
        sealed.ciphertext,
    )
    row.updated_by, row.updated_at = actor, utcnow()


def client_credentials(session: Session, keyring: Keyring, integration_key: str) -> ClientCredentials | None:
    """The adapter's client id and opened secret, or ``None`` when the operator set none."""
    row = session.get(OAuthClient, integration_key)
    if row is None:
        return None
    secret = keyring.open(
        Sealed(row.secret_key_id, row.secret_nonce, row.secret_ciphertext), _client_aad(integration_key)
    )
    scrubber.remember(secret)
    return ClientCredentials(row.client_id, secret)


def configured_clients(session: Session) -> dict[str, str]:
    """``{integration_key: client_id}`` of every configured client (no secrets)."""
    rows = session.execute(select(OAuthClient.integration_key, OAuthClient.client_id)).all()
    return dict(rows)


def reseal_clients(session: Session, keyring: Keyring) -> int:
    """Re-seal every client secret not under the primary key (``secrets reencrypt``). Returns how many."""
    count = 0
    for row in session.scalars(select(OAuthClient).where(OAuthClient.secret_key_id != keyring.primary_id)):
        aad = _client_aad(row.integration_key)
        sealed = keyring.seal(
            keyring.open(Sealed(row.secret_key_id, row.secret_nonce, row.secret_ciphertext), aad), aad
        )
        row.secret_key_id, row.secret_nonce, row.secret_ciphertext = (
            sealed.key_id,
            sealed.nonce,
            sealed.ciphertext,
        )
        count += 1
    return count
