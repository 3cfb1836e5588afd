"""Inbound partner callbacks: authenticate, deduplicate, map, store — in one transaction.

``POST /v1/integrations/callbacks/{integration_key}/{connection_id}`` hands an
:class:`InboundCallback` to :meth:`CallbackService.receive`. The package, by operation:

* :mod:`.inbound` — the request as the route read it, the outcome, header names and limits;
* :mod:`.body` — strict JSON parsing and the characters no database stores;
* :mod:`.authentication` — the issued key in a header, or a Standard Webhooks signature;
* :mod:`.mapping` — the delivery id check and the adapter's reading of the payload;
* :mod:`.pipeline` — :class:`CallbackService`: the checks in the contract's order, per batch;
* :mod:`.store` — the batch's raw SQL: targets, delivery ids, records, activity;
* :mod:`.batch` — what one batch carries between those steps.
"""

from tovplus.integrations.standard_webhooks import TOLERANCE_SECONDS as SIGNATURE_TOLERANCE_SECONDS
from tovplus.integrations.standard_webhooks import sign
from tovplus.services.callbacks.authentication import signing_key, signing_secret
from tovplus.services.callbacks.body import parse_body
from tovplus.services.callbacks.inbound import (
    DELIVERY_HEADER,
    MAX_DELIVERY_ID,
    MAX_ID_LENGTH,
    SECRET_HEADER,
    CallbackOutcome,
    InboundCallback,
)
from tovplus.services.callbacks.pipeline import (
    REJECTED_ACTIVITY_BURST,
    REJECTED_ACTIVITY_PER_MINUTE,
    CallbackService,
)

__all__ = [
    "DELIVERY_HEADER",
    "MAX_DELIVERY_ID",
    "MAX_ID_LENGTH",
    "REJECTED_ACTIVITY_BURST",
    "REJECTED_ACTIVITY_PER_MINUTE",
    "SECRET_HEADER",
    "SIGNATURE_TOLERANCE_SECONDS",
    "CallbackOutcome",
    "CallbackService",
    "InboundCallback",
    "parse_body",
    "sign",
    "signing_key",
    "signing_secret",
]
