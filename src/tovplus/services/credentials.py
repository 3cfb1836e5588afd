"""Secrets at rest: a keyring of AES-256-GCM keys and the one place that decrypts.

Each ciphertext is bound by associated data to the row and field it belongs to
(``connection:<id>:<field>`` or ``webhook-endpoint:<id>``), so a ciphertext copied
into another row fails to decrypt instead of leaking into the wrong connection.
"""

from __future__ import annotations

import secrets

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from tovplus.db.models import ConnectionSecret, WebhookEndpoint
from tovplus.db.sql import one_of
from tovplus.db.types import utcnow
from tovplus.integrations.redaction import redact_secret, scrubber
from tovplus.runtime.keyring import Keyring, Sealed


def _connection_aad(connection_id: str, field_key: str) -> str:
    return f"connection:{connection_id}:{field_key}"


def _endpoint_aad(endpoint_id: str) -> str:
    return f"webhook-endpoint:{endpoint_id}"


# --- connection secrets -------------------------------------------------------------------


def store_secret(session: Session, keyring: Keyring, connection_id: str, field_key: str, value: str) -> None:
    """Encrypt and store (or replace) one secret field of a connection."""
    scrubber.remember(value)
    sealed = keyring.seal(value, _connection_aad(connection_id, field_key))
    row = session.get(ConnectionSecret, (connection_id, field_key))
    if row is None:
        row = ConnectionSecret(connection_id=connection_id, field_key=field_key)
        session.add(row)
    row.key_id, row.nonce, row.ciphertext = sealed.key_id, sealed.nonce, sealed.ciphertext
    row.redacted = redact_secret(value) or ""
    row.updated_at = utcnow()


def delete_secret(session: Session, connection_id: str, field_key: str) -> None:
    """Delete one stored secret field of a connection (if there is one)."""
    row = session.get(ConnectionSecret, (connection_id, field_key))
    if row is not None:
        session.delete(row)


def destroy_secrets(session: Session, connection_id: str) -> int:
    """Delete every stored secret of a connection (revocation). Returns how many went."""
    rows = session.scalars(
        select(ConnectionSecret).where(ConnectionSecret.connection_id == connection_id)
    ).all()
    for row in rows:
        session.delete(row)
    return len(rows)


def redacted_secrets(session: Session, connection_ids: list[str]) -> dict[str, dict[str, str]]:
    """``{connection_id: {field_key: redacted}}`` for many connections in one query."""
    out: dict[str, dict[str, str]] = {cid: {} for cid in connection_ids}
    if not connection_ids:
        return out
    rows = session.execute(
        select(ConnectionSecret.connection_id, ConnectionSecret.field_key, ConnectionSecret.redacted).where(
            one_of(ConnectionSecret.connection_id.expression, connection_ids)
        )
    )
    for connection_id, field_key, redacted in rows:
        out[connection_id][field_key] = redacted
    return out


#: Built once: every sync claim runs it, and building and loading ORM entities per claim was 12 %
#: of the embedded engine's time (py-spy, docs/benchmarks.md "Sync engine").
_SEALED_SECRETS = select(
    ConnectionSecret.field_key, ConnectionSecret.key_id, ConnectionSecret.nonce, ConnectionSecret.ciphertext
).where(ConnectionSecret.connection_id == bindparam("connection_id"))


def decrypt_connection_secrets(session: Session, keyring: Keyring, connection_id: str) -> dict[str, str]:
    """The one function that returns a connection's plaintext secrets (for sync only)."""
    values: dict[str, str] = {}
    for field_key, key_id, nonce, ciphertext in session.execute(
        _SEALED_SECRETS, {"connection_id": connection_id}
    ):
        value = keyring.open(Sealed(key_id, nonce, ciphertext), _connection_aad(connection_id, field_key))
        scrubber.remember(value)
        values[field_key] = value
    return values


def secret_matches(
    session: Session, keyring: Keyring, connection_id: str, field_key: str, candidate: str
) -> bool:
    """True when ``candidate`` equals the stored value (without handing the value out)."""
    row = session.get(ConnectionSecret, (connection_id, field_key))
    if row is None:
        return False
    value = keyring.open(
        Sealed(row.key_id, row.nonce, row.ciphertext), _connection_aad(connection_id, field_key)
    )
    return secrets.compare_digest(value.encode(), candidate.encode())


# --- webhook signing secrets ---------------------------------------------------------------


def seal_endpoint_secret(keyring: Keyring, endpoint_id: str, signing_secret: str) -> Sealed:
    """Encrypt a webhook endpoint's signing secret."""
    scrubber.remember(signing_secret)
    return keyring.seal(signing_secret, _endpoint_aad(endpoint_id))


def open_endpoint_secret(keyring: Keyring, endpoint: WebhookEndpoint) -> str:
    """Decrypt a webhook endpoint's signing secret."""
    value = keyring.open(
        Sealed(endpoint.secret_key_id, endpoint.secret_nonce, endpoint.secret_ciphertext),
        _endpoint_aad(endpoint.id),
    )
    scrubber.remember(value)
    return value


def _previous_endpoint_aad(endpoint_id: str) -> str:
    return f"webhook-endpoint:{endpoint_id}:previous"


def seal_previous_endpoint_secret(keyring: Keyring, endpoint_id: str, signing_secret: str) -> Sealed:
    """Encrypt the signing secret a rotation replaced (valid for the overlap only)."""
    scrubber.remember(signing_secret)
    return keyring.seal(signing_secret, _previous_endpoint_aad(endpoint_id))


def open_previous_endpoint_secret(keyring: Keyring, endpoint: WebhookEndpoint) -> str | None:
    """Decrypt the signing secret a rotation replaced, if the endpoint still has one."""
    if (
        endpoint.previous_secret_key_id is None
        or endpoint.previous_secret_nonce is None
        or endpoint.previous_secret_ciphertext is None
    ):
        return None
    value = keyring.open(
        Sealed(
            endpoint.previous_secret_key_id,
            endpoint.previous_secret_nonce,
            endpoint.previous_secret_ciphertext,
        ),
        _previous_endpoint_aad(endpoint.id),
    )
    scrubber.remember(value)
    return value


# --- master key rotation -----------------------------------------------------------------------


def reencrypt_all(session: Session, keyring: Keyring, *, batch_size: int = 500) -> dict[str, int]:
    """Re-encrypt every stored secret under the keyring's primary key. Returns counts."""
    counts = {"connection_secrets": 0, "webhook_endpoints": 0}
    stale_secrets = select(ConnectionSecret).where(ConnectionSecret.key_id != keyring.primary_id)
    for row in session.scalars(stale_secrets.execution_options(yield_per=batch_size)):
        aad = _connection_aad(row.connection_id, row.field_key)
        sealed = keyring.seal(keyring.open(Sealed(row.key_id, row.nonce, row.ciphertext), aad), aad)
        row.key_id, row.nonce, row.ciphertext = sealed.key_id, sealed.nonce, sealed.ciphertext
        counts["connection_secrets"] += 1
    stale_endpoints = select(WebhookEndpoint).where(WebhookEndpoint.secret_key_id != keyring.primary_id)
    for endpoint in session.scalars(stale_endpoints.execution_options(yield_per=batch_size)):
        sealed = seal_endpoint_secret(keyring, endpoint.id, open_endpoint_secret(keyring, endpoint))
        endpoint.secret_key_id, endpoint.secret_nonce = sealed.key_id, sealed.nonce
        endpoint.secret_ciphertext = sealed.ciphertext
        counts["webhook_endpoints"] += 1
    stale_previous = select(WebhookEndpoint).where(
        WebhookEndpoint.previous_secret_key_id.is_not(None),
        WebhookEndpoint.previous_secret_key_id != keyring.primary_id,
    )
    for endpoint in session.scalars(stale_previous.execution_options(yield_per=batch_size)):
        previous = open_previous_endpoint_secret(keyring, endpoint)
        if previous is not None:
            sealed = seal_previous_endpoint_secret(keyring, endpoint.id, previous)
            endpoint.previous_secret_key_id, endpoint.previous_secret_nonce = sealed.key_id, sealed.nonce
            endpoint.previous_secret_ciphertext = sealed.ciphertext
            counts["webhook_endpoints"] += 1
    return counts
