"""Who sent a callback: the issued key in a header, or a Standard Webhooks signature.

The key in ``x-tov-integration-secret`` is compared in constant time with the stored SHA-256
of its secret part. An adapter that declares ``callback_auth = CallbackAuth.STANDARD_WEBHOOKS``
may instead have the partner sign the callback (:mod:`tovplus.integrations.standard_webhooks`,
five minutes' tolerance) with the connection's callback signing secret: a random ``whsec_…``
secret issued with the key and shown once beside it, stored only sealed (:mod:`.signing`).
Nothing the database holds in the clear, the key's digest included, signs a callback.
"""

from __future__ import annotations

import hmac
import logging

from tovplus.integrations import standard_webhooks
from tovplus.integrations.contract import Adapter, CallbackAuth
from tovplus.runtime.keyring import DecryptionFailed
from tovplus.services.auth import parse_integration_key, sha256_hex
from tovplus.services.callbacks.batch import Key, Target
from tovplus.services.callbacks.inbound import InboundCallback
from tovplus.services.callbacks.signing import SigningKeys

log = logging.getLogger(__name__)

#: Why a callback was not authenticated, as the ``callback.rejected`` activity entry says it.
REJECTION_SUMMARIES = {
    "missing_secret": "no secret or signature was sent",
    "wrong_secret": "the secret is wrong, revoked or rotated away",
    "bad_signature": "the signature does not match",
    "stale_signature": "the signature's timestamp is outside the five-minute tolerance",
    "malformed_signature": "the signature headers are malformed",
    "no_signing_secret": "the connection has no callback signing secret yet; rotate its key to issue one",
    "unreadable_signing_secret": "the stored callback signing secret cannot be read; rotate the key",
}


class Rejected(Exception):
    """Authentication failed for ``reason`` (one of :data:`REJECTION_SUMMARIES`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def authenticate(job: InboundCallback, target: Target, adapter: Adapter, signing: SigningKeys) -> Key:
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
        return verify_signature(job, target, signing)
    raise Rejected("missing_secret")


def verify_signature(job: InboundCallback, target: Target, signing: SigningKeys) -> Key:
    """Standard Webhooks: timestamp within tolerance and a ``v1`` signature by a live key's secret."""
    try:
        keys, mac_keys = signing.for_target(target)
    except DecryptionFailed:
        log.error("the callback signing secret of connection %s cannot be opened", target.connection_id)
        raise Rejected("unreadable_signing_secret") from None
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
        # live keys, but none with a secret: issued before signing secrets existed
        raise Rejected("no_signing_secret" if target.keys and not keys else exc.reason) from None
    return keys[index]
