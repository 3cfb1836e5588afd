"""Who sent a callback: the issued key in a header, or a Standard Webhooks signature made with it.

The key in ``x-tov-integration-secret`` is compared in constant time with the stored SHA-256
of its secret part. An adapter that declares ``callback_auth = CallbackAuth.STANDARD_WEBHOOKS``
may instead have the partner sign the callback (:mod:`tovplus.integrations.standard_webhooks`,
five minutes' tolerance). The HMAC key is the SHA-256 digest of the issued key's secret part
(:func:`signing_secret` gives it in the ``whsec_…`` form that Standard Webhooks libraries take),
so the server verifies with what it stores and never needs the issued key itself.
"""

from __future__ import annotations

import hashlib
import hmac

from tovplus.integrations import standard_webhooks
from tovplus.integrations.contract import Adapter, CallbackAuth
from tovplus.services.auth import parse_integration_key, sha256_hex
from tovplus.services.callbacks.batch import Key, Target
from tovplus.services.callbacks.inbound import InboundCallback

#: Why a callback was not authenticated, as the ``callback.rejected`` activity entry says it.
REJECTION_SUMMARIES = {
    "missing_secret": "no secret or signature was sent",
    "wrong_secret": "the secret is wrong, revoked or rotated away",
    "bad_signature": "the signature does not match",
    "stale_signature": "the signature's timestamp is outside the five-minute tolerance",
    "malformed_signature": "the signature headers are malformed",
}


class Rejected(Exception):
    """Authentication failed for ``reason`` (one of :data:`REJECTION_SUMMARIES`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def signing_key(issued_key: str) -> bytes:
    """The HMAC key of Standard Webhooks callbacks for ``issued_key``: SHA-256 of its secret part."""
    parsed = parse_integration_key(issued_key)
    if parsed is None:
        raise ValueError("not an issued integration key")
    return hashlib.sha256(parsed[1].encode()).digest()


def signing_secret(issued_key: str) -> str:
    """The same key in the ``whsec_<base64>`` form Standard Webhooks libraries take."""
    return standard_webhooks.secret_from_key(signing_key(issued_key))


def authenticate(job: InboundCallback, target: Target, adapter: Adapter) -> Key:
    """The live key that sent ``job``, else :class:`Rejected`."""
    if job.secret is not None:
        parsed = parse_integration_key(job.secret)
        presented = sha256_hex(parsed[1] if parsed else job.secret)
        found: Key | None = None
        for key in target.keys:  # compare against every live key: same work whatever matches
            if (
                hmac.compare_digest(presented, key.secret_hash)
                and parsed is not None
                and parsed[0] == key.key_id
            ):
                found = key
        if found is None:
            raise Rejected("wrong_secret")
        return found
    if adapter.callback_auth is CallbackAuth.STANDARD_WEBHOOKS and (
        job.webhook_signature is not None or job.webhook_id is not None or job.webhook_timestamp is not None
    ):
        return verify_signature(job, target)
    raise Rejected("missing_secret")


def verify_signature(job: InboundCallback, target: Target) -> Key:
    """Standard Webhooks: timestamp within tolerance and a ``v1`` signature by a live key."""
    keys: list[Key] = []
    mac_keys: list[bytes] = []
    for key in target.keys:
        try:
            mac_keys.append(bytes.fromhex(key.secret_hash))
        except ValueError:
            continue
        keys.append(key)
    try:
        index = standard_webhooks.verify(
            mac_keys,
            job.webhook_id,
            job.webhook_timestamp,
            job.webhook_signature,
            job.body,
            now=job.received_at,
        )
    except standard_webhooks.SignatureInvalid as exc:
        raise Rejected(exc.reason) from None
    return keys[index]
