"""Inbound partner callbacks: authenticate, deduplicate, map, store — in one transaction.

``POST /v1/integrations/callbacks/{integration_key}/{connection_id}`` hands an
:class:`InboundCallback` to :meth:`CallbackService.receive`. The package, by operation:

* :mod:`.inbound` — the request as the route read it, the outcome, header names and limits;
* :mod:`.body` — strict JSON parsing and the characters no database stores;
* :mod:`.authentication` — the issued key in a header, or a Standard Webhooks signature;
* :mod:`.signing` — each issued key's callback signing secret: issued, sealed, opened once;
* :mod:`.mapping` — the delivery id check and the adapter's reading of the payload;
* :mod:`.pipeline` — :class:`CallbackService`: the checks in the contract's order, per batch;
* :mod:`.store` — the batch's raw SQL: targets, delivery ids, records, activity;
* :mod:`.rejections` — every refused callback counted, and the ``callback.rejected`` rows;
* :mod:`.rejection_log` — those entries' bounded rate, and the flusher that coalesces the rest;
* :mod:`.batch` — what one batch carries between those steps;
* :mod:`.connection` — the writer's own connection, held from one batch to the next.
"""

from tovplus.integrations.standard_webhooks import TOLERANCE_SECONDS as SIGNATURE_TOLERANCE_SECONDS
from tovplus.integrations.standard_webhooks import sign
from tovplus.services.callbacks.body import parse_body
from tovplus.services.callbacks.inbound import (
    DELIVERY_HEADER,
    MAX_DELIVERY_ID,
    MAX_ID_LENGTH,
    SECRET_HEADER,
    CallbackOutcome,
    InboundCallback,
)
from tovplus.services.callbacks.pipeline import CallbackService
from tovplus.services.callbacks.rejection_log import (
    COALESCE_WITHIN_SECONDS,
    REJECTED_ACTIVITY_BURST,
    REJECTED_ACTIVITY_PER_MINUTE,
)
from tovplus.services.callbacks.rejections import WINDOW as REJECTION_WINDOW
from tovplus.services.callbacks.rejections import (
    RecentRejections,
    RejectionCounts,
    counts_from,
    recent_rejections,
    window_params,
)
from tovplus.services.callbacks.signing import (
    destroy_revoked_signing_secrets,
    issue_signing_secret,
    reencrypt_signing_secrets,
    signs_callbacks,
)

__all__ = [
    "COALESCE_WITHIN_SECONDS",
    "DELIVERY_HEADER",
    "MAX_DELIVERY_ID",
    "MAX_ID_LENGTH",
    "REJECTED_ACTIVITY_BURST",
    "REJECTED_ACTIVITY_PER_MINUTE",
    "REJECTION_WINDOW",
    "SECRET_HEADER",
    "SIGNATURE_TOLERANCE_SECONDS",
    "CallbackOutcome",
    "CallbackService",
    "InboundCallback",
    "RecentRejections",
    "RejectionCounts",
    "counts_from",
    "destroy_revoked_signing_secrets",
    "issue_signing_secret",
    "parse_body",
    "recent_rejections",
    "reencrypt_signing_secrets",
    "sign",
    "signs_callbacks",
    "window_params",
]
