"""Outbound webhooks: endpoints, the outbox of deliveries, and sending them signed.

* :mod:`.outbox` — :func:`emit_event` writes one delivery row per subscribed endpoint inside
  the caller's transaction; the caller dispatches the returned ids after commit.
* :mod:`.batch` — :func:`deliver` (one) and :func:`deliver_many` (a batch) claim deliveries
  with one conditional ``UPDATE … RETURNING`` and a lease, send them, and record the attempts
  in one transaction.
* :mod:`.delivery` — the rules: what an attempt leads to (delivered, retry later with the same
  ``webhook-id``, failed, or endpoint disabled); :func:`requeue_due_deliveries` lists what the
  reaper should dispatch again.
* :mod:`.sending` — the exact body, the Standard Webhooks headers
  (:mod:`tovplus.integrations.standard_webhooks`), the HTTP client, one attempt's outcome.
* :mod:`.endpoints` — the planner's routes: create (with a ``whsec_…`` signing secret) and list.
* :mod:`.operations` — patch, delete, rotate the secret (24 h in which both sign), test event.
* :mod:`.log` — the message log per endpoint, resend one delivery, recover every failed one.
* :mod:`.catalog` — every event type with its description and JSON Schema (``EVENT_TYPES``).
"""

from tovplus.integrations.standard_webhooks import SECRET_PREFIX
from tovplus.integrations.standard_webhooks import key_from_secret as signing_key
from tovplus.services.webhooks.batch import (
    BATCH_SIZE,
    Delivered,
    claim_deliveries,
    deliver,
    deliver_many,
    record_outcomes,
)
from tovplus.services.webhooks.catalog import (
    CATALOG,
    EVENT_TYPES,
    EventType,
    EventTypeModel,
    event_type,
    event_type_views,
)
from tovplus.services.webhooks.delivery import (
    DISABLE_AFTER_FAILING_FOR,
    REPAIR_HINT,
    UNREADABLE_ENDPOINT_REASON,
    requeue_due_deliveries,
)
from tovplus.services.webhooks.demo import seed_webhooks_demo
from tovplus.services.webhooks.endpoints import (
    RECENT_DELIVERIES,
    create_endpoint,
    list_endpoints,
    new_signing_secret,
)
from tovplus.services.webhooks.log import STATUSES, list_deliveries, recover, resend
from tovplus.services.webhooks.operations import (
    ROTATION_OVERLAP,
    EndpointPatch,
    delete_endpoint,
    failing_endpoint_count,
    rotate_secret,
    send_test,
    update_endpoint,
)
from tovplus.services.webhooks.outbox import (
    dispatch_after_commit,
    emit_event,
    endpoints_remembered,
    set_payload_check,
)
from tovplus.services.webhooks.sending import (
    CONNECT_TIMEOUT,
    EXCERPT_CHARS,
    MAX_RETRY_AFTER,
    REQUEST_TIMEOUT,
    USER_AGENT,
    Claim,
    Outcome,
    close_http_clients,
    encode_body,
    http_client,
    parse_retry_after,
    send,
    sign,
    signed_headers,
)
from tovplus.services.webhooks.views import (
    LoggedAttemptOut,
    LoggedDeliveryOut,
    WebhookAttemptOut,
    WebhookDeliveryOut,
    WebhookEndpointListedOut,
    WebhookEndpointOut,
)

__all__ = [
    "BATCH_SIZE",
    "CATALOG",
    "CONNECT_TIMEOUT",
    "DISABLE_AFTER_FAILING_FOR",
    "EVENT_TYPES",
    "EXCERPT_CHARS",
    "MAX_RETRY_AFTER",
    "RECENT_DELIVERIES",
    "REPAIR_HINT",
    "REQUEST_TIMEOUT",
    "ROTATION_OVERLAP",
    "SECRET_PREFIX",
    "STATUSES",
    "UNREADABLE_ENDPOINT_REASON",
    "USER_AGENT",
    "Claim",
    "Delivered",
    "EndpointPatch",
    "EventType",
    "EventTypeModel",
    "LoggedAttemptOut",
    "LoggedDeliveryOut",
    "Outcome",
    "WebhookAttemptOut",
    "WebhookDeliveryOut",
    "WebhookEndpointListedOut",
    "WebhookEndpointOut",
    "claim_deliveries",
    "close_http_clients",
    "create_endpoint",
    "delete_endpoint",
    "deliver",
    "deliver_many",
    "dispatch_after_commit",
    "emit_event",
    "encode_body",
    "endpoints_remembered",
    "event_type",
    "event_type_views",
    "failing_endpoint_count",
    "http_client",
    "list_deliveries",
    "list_endpoints",
    "new_signing_secret",
    "parse_retry_after",
    "record_outcomes",
    "recover",
    "requeue_due_deliveries",
    "resend",
    "rotate_secret",
    "seed_webhooks_demo",
    "send",
    "send_test",
    "set_payload_check",
    "sign",
    "signed_headers",
    "signing_key",
    "update_endpoint",
]
