"""Outbound webhooks: endpoints, the outbox of deliveries, and sending them signed.

* :mod:`.outbox` — :func:`emit_event` writes one delivery row per subscribed endpoint inside
  the caller's transaction; the caller dispatches the returned ids after commit.
* :mod:`.delivery` — :func:`deliver` claims one delivery with a conditional update and a
  lease, sends it, records the attempt and decides what next (delivered, retry later with the
  same ``webhook-id``, failed, or endpoint disabled); :func:`requeue_due_deliveries` lists what
  the reaper should dispatch again.
* :mod:`.sending` — the exact body, the Standard Webhooks headers
  (:mod:`tovplus.integrations.standard_webhooks`), the HTTP client, one attempt's outcome.
* :mod:`.endpoints` — the planner's routes: create (with a ``whsec_…`` signing secret) and list.
"""

from tovplus.integrations.standard_webhooks import SECRET_PREFIX
from tovplus.integrations.standard_webhooks import key_from_secret as signing_key
from tovplus.services.webhooks.delivery import (
    DISABLE_AFTER_FAILING_FOR,
    UNREADABLE_ENDPOINT_REASON,
    deliver,
    requeue_due_deliveries,
)
from tovplus.services.webhooks.endpoints import (
    RECENT_DELIVERIES,
    create_endpoint,
    list_endpoints,
    new_signing_secret,
)
from tovplus.services.webhooks.outbox import EVENT_TYPES, emit_event
from tovplus.services.webhooks.sending import (
    CONNECT_TIMEOUT,
    EXCERPT_CHARS,
    MAX_RETRY_AFTER,
    REQUEST_TIMEOUT,
    USER_AGENT,
    close_http_clients,
    encode_body,
    http_client,
    parse_retry_after,
    sign,
)
from tovplus.services.webhooks.views import (
    WebhookAttemptOut,
    WebhookDeliveryOut,
    WebhookEndpointListedOut,
    WebhookEndpointOut,
)

__all__ = [
    "CONNECT_TIMEOUT",
    "DISABLE_AFTER_FAILING_FOR",
    "EVENT_TYPES",
    "EXCERPT_CHARS",
    "MAX_RETRY_AFTER",
    "RECENT_DELIVERIES",
    "REQUEST_TIMEOUT",
    "SECRET_PREFIX",
    "UNREADABLE_ENDPOINT_REASON",
    "USER_AGENT",
    "WebhookAttemptOut",
    "WebhookDeliveryOut",
    "WebhookEndpointListedOut",
    "WebhookEndpointOut",
    "close_http_clients",
    "create_endpoint",
    "deliver",
    "emit_event",
    "encode_body",
    "http_client",
    "list_endpoints",
    "new_signing_secret",
    "parse_retry_after",
    "requeue_due_deliveries",
    "sign",
    "signing_key",
]
