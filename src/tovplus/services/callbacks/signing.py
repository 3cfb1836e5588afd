"""Callback signing secrets: one per issued key, shown once, sealed at rest, opened once per process.

A connection of an adapter that declares ``callback_auth = CallbackAuth.STANDARD_WEBHOOKS`` gets a
random ``whsec_…`` secret (32 bytes) with each issued key: at creation and at every rotation,
shown once beside the key. It is sealed with the keyring (AES-256-GCM) on the key's own row
(``integration_keys.callback_secret_*``), bound by its associated data
``callback-signing:<connection id>:<key id>``, so a ciphertext copied to another key's row does
not open. Revoking a key (rotation, revocation of the connection) clears it. Nothing stored in
the database is an HMAC key: a copy of the database yields ciphertext and digests only.

Keys issued before this existed have no secret; their connections' signed callbacks are
refused (``no_signing_secret``) until the key is rotated.

:class:`SigningKeys` keeps the opened HMAC keys in the callback writer's memory, one entry per
connection, checked against what each batch loads (the live keys and their nonces), so a
rotation or revocation in any process replaces or drops the entry on the next callback.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from tovplus.db.models import IntegrationKey, IntegrationPrincipal
from tovplus.integrations import standard_webhooks
from tovplus.integrations.contract import Adapter, CallbackAuth
from tovplus.integrations.redaction import scrubber
from tovplus.runtime.keyring import Keyring, Sealed
from tovplus.services.callbacks.batch import Key, Target

_KEYS = cast(Table, IntegrationKey.__table__)
_CLEARED: dict[str, Any] = {
    "callback_secret_key_id": None,
    "callback_secret_nonce": None,
    "callback_secret_ciphertext": None,
}


def _aad(connection_id: str, key_id: str) -> str:
    return f"callback-signing:{connection_id}:{key_id}"


def signs_callbacks(adapter: Adapter | None) -> bool:
    """Does this adapter's partner sign callbacks (and so need a signing secret per key)?"""
    return (
        adapter is not None
        and adapter.supports_inbound_callbacks
        and adapter.callback_auth is CallbackAuth.STANDARD_WEBHOOKS
    )


def issue_signing_secret(session: Session, keyring: Keyring, connection_id: str, key_id: str) -> str:
    """A new ``whsec_…`` secret for the issued key ``key_id``, sealed on its row; shown once."""
    secret = standard_webhooks.new_secret()
    scrubber.remember(secret)
    sealed = keyring.seal(secret, _aad(connection_id, key_id))
    session.flush()  # the key row may still be pending
    session.execute(
        update(_KEYS)
        .where(_KEYS.c.key_id == key_id)
        .values(
            callback_secret_key_id=sealed.key_id,
            callback_secret_nonce=sealed.nonce,
            callback_secret_ciphertext=sealed.ciphertext,
        )
    )
    return secret


def destroy_revoked_signing_secrets(session: Session, principal_id: str) -> int:
    """Clear the signing secrets of the principal's revoked keys (after a rotation or revocation);
    returns how many went."""
    result = session.execute(
        update(_KEYS)
        .where(
            _KEYS.c.principal_id == principal_id,
            _KEYS.c.revoked_at.is_not(None),
            _KEYS.c.callback_secret_ciphertext.is_not(None),
        )
        .values(**_CLEARED)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def reencrypt_signing_secrets(session: Session, keyring: Keyring) -> dict[str, int]:
    """Seal every signing secret again under the keyring's primary key (``tovplus secrets reencrypt``)."""
    rows = session.execute(
        select(
            _KEYS.c.key_id,
            IntegrationPrincipal.connection_id,
            _KEYS.c.callback_secret_key_id,
            _KEYS.c.callback_secret_nonce,
            _KEYS.c.callback_secret_ciphertext,
        )
        .join(IntegrationPrincipal, IntegrationPrincipal.id == _KEYS.c.principal_id)
        .where(_KEYS.c.callback_secret_key_id.is_not(None))
        .where(_KEYS.c.callback_secret_key_id != keyring.primary_id)
    ).all()
    for key_id, connection_id, master_id, nonce, ciphertext in rows:
        aad = _aad(connection_id, key_id)
        sealed = keyring.seal(keyring.open(Sealed(master_id, nonce, ciphertext), aad), aad)
        session.execute(
            update(_KEYS)
            .where(_KEYS.c.key_id == key_id)
            .values(
                callback_secret_key_id=sealed.key_id,
                callback_secret_nonce=sealed.nonce,
                callback_secret_ciphertext=sealed.ciphertext,
            )
        )
    return {"callback_signing_secrets": len(rows)}


class SigningKeys:
    """The HMAC keys of connections' live keys, each opened once and kept in this process's memory.

    Used by the callback writer thread only. An entry is keyed by connection and holds, per live
    key, the nonce it was opened from: a key rotated away, revoked or sealed again (new nonce)
    is dropped or opened afresh the next time the connection calls back.
    """

    def __init__(self, keyring: Keyring, *, max_connections: int = 100_000) -> None:
        self._keyring = keyring
        self._max = max_connections
        self._by_connection: dict[str, dict[str, tuple[bytes, bytes]]] = {}

    def __len__(self) -> int:
        return len(self._by_connection)

    def for_target(self, target: Target) -> tuple[list[Key], list[bytes]]:
        """The target's live keys that have a signing secret, and their HMAC keys, in one order.

        Raises :class:`~tovplus.runtime.keyring.DecryptionFailed` when a stored secret does not open.
        """
        cached = self._by_connection.get(target.connection_id)
        keys: list[Key] = []
        macs: list[bytes] = []
        fresh: dict[str, tuple[bytes, bytes]] = {}
        for key in target.keys:
            sealed = key.signing
            if sealed is None:
                continue
            hit = cached.get(key.key_id) if cached is not None else None
            if hit is None or hit[0] != sealed.nonce:
                secret = self._keyring.open(sealed, _aad(target.connection_id, key.key_id))
                scrubber.remember(secret)
                hit = (sealed.nonce, standard_webhooks.key_from_secret(secret))
            fresh[key.key_id] = hit
            keys.append(key)
            macs.append(hit[1])
        if fresh != cached:
            if not fresh:
                self._by_connection.pop(target.connection_id, None)
            else:
                if len(self._by_connection) >= self._max:
                    self._by_connection.clear()
                self._by_connection[target.connection_id] = fresh
        return keys, macs
