"""Standard Webhooks (https://www.standardwebhooks.com): the one place that signs and verifies.

A message carries three headers: ``webhook-id`` (the message id, kept across retries),
``webhook-timestamp`` (Unix seconds) and ``webhook-signature``, a space-separated list of
``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``. The HMAC key is raw bytes; the
``whsec_<base64>`` form is how Standard Webhooks libraries exchange it.

Outbound webhooks sign with a random ``whsec_`` secret per endpoint; inbound callbacks verify
with a random ``whsec_`` secret per issued key (``services.callbacks``). Both come here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from typing import Literal

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
#: How far ``webhook-timestamp`` may be from the receiver's clock, either way.
TOLERANCE_SECONDS = 300
#: At most this many signatures of one header are tried (a header is not a work list).
MAX_SIGNATURES = 8

#: Why a message did not verify.
Failure = Literal["malformed_signature", "stale_signature", "bad_signature"]


class SignatureInvalid(Exception):
    """A message failed verification; ``reason`` says how."""

    def __init__(self, reason: Failure) -> None:
        super().__init__(reason)
        self.reason: Failure = reason


def new_secret() -> str:
    """A fresh ``whsec_<base64 of 32 random bytes>`` secret."""
    return secret_from_key(secrets.token_bytes(32))


def secret_from_key(key: bytes) -> str:
    """``key`` in the ``whsec_<base64>`` form Standard Webhooks libraries take."""
    return SECRET_PREFIX + base64.b64encode(key).decode()


def key_from_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret: the base64-decoded part after the prefix."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


def _signed(msg_id: str, timestamp: int | str, body: bytes) -> bytes:
    """What is signed: ``{id}.{timestamp}.{body}``."""
    return f"{msg_id}.{timestamp}.".encode() + body


def _mac(key: bytes, signed: bytes) -> bytes:
    """The base64 HMAC-SHA256 of ``signed``."""
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())


def sign(key: bytes, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) for one message."""
    return "v1," + _mac(key, _signed(msg_id, timestamp, body)).decode()


def headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one message."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(key, msg_id, timestamp, body),
    }


def verify(
    keys: Sequence[bytes],
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> int:
    """The index in ``keys`` of the key that signed the message, else :class:`SignatureInvalid`.

    Checked in this order: all three headers present and the timestamp a number (else
    ``malformed_signature``), the timestamp within ``tolerance`` of ``now`` (``stale_signature``),
    at least one ``v1`` signature (``malformed_signature``), one of them made by one of ``keys``
    (``bad_signature``). Every presented signature is compared with every key in constant time,
    so the work does not depend on which one matches.
    """
    if (
        not msg_id
        or not timestamp
        or not signature
        or len(timestamp) > 12
        or not (timestamp.isascii() and timestamp.isdigit())
    ):
        raise SignatureInvalid("malformed_signature")
    if abs(now - int(timestamp)) > tolerance:
        raise SignatureInvalid("stale_signature")
    presented: list[bytes] = []
    for part in signature.split()[:MAX_SIGNATURES]:
        version, _, value = part.partition(",")
        if version == "v1" and value:
            presented.append(value.encode("ascii", "replace"))
    if not presented:
        raise SignatureInvalid("malformed_signature")
    signed = _signed(msg_id, timestamp, body)
    found: int | None = None
    for index, key in enumerate(keys):
        expected = _mac(key, signed)
        for candidate in presented:
            if hmac.compare_digest(candidate, expected):
                found = index
    if found is None:
        raise SignatureInvalid("bad_signature")
    return found
