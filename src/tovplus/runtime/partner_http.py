"""The process's pooled HTTP client for partner APIs (what adapters get as ``SyncContext.http``).

Built from :func:`tovplus.integrations.http.outbound_client` with the settings that apply to
partner calls, once per distinct configuration, and shared by every sync thread.
"""

from __future__ import annotations

import httpx

from tovplus.integrations.http import ClientCache, outbound_client
from tovplus.integrations.politeness import PartnerGates, PartnerLimits, PoliteTransport
from tovplus.settings import Settings

#: The largest answer a partner may send to one sync request; a larger one fails the attempt (retried).
PARTNER_RESPONSE_LIMIT_BYTES = 16 * 1024 * 1024
_clients = ClientCache()
#: One gate per adapter that declares ``partner_limits``, shared by every thread of the process.
partner_gates = PartnerGates()


def partner_http_client(
    settings: Settings, integration_key: str | None = None, limits: PartnerLimits | None = None
) -> httpx.Client:
    """The process's client for partner APIs: timeouts, connection reuse, no redirects, no cookies,
    no proxies from the environment, and non-public addresses refused unless ``allow_private_urls``.

    With ``limits`` (an adapter's ``partner_limits``), the client is that adapter's own, and its
    requests pass the adapter's one gate in this process (``integrations/politeness.py``).
    """
    timeout = settings.sync_http_timeout_seconds
    gate = partner_gates.get(integration_key, limits) if integration_key and limits else None
    own = (integration_key, limits) if gate is not None else None
    return _clients.get(
        (settings.allow_private_urls, timeout, settings.worker_threads, settings.sync_concurrency, own),
        lambda: outbound_client(
            allow_private=settings.allow_private_urls,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            pool_size=max(20, settings.worker_threads * 4, settings.sync_concurrency),
            user_agent="TOVPlus-Sync/1",
            max_response_bytes=PARTNER_RESPONSE_LIMIT_BYTES,
            wrap=(lambda inner: PoliteTransport(inner, gate)) if gate is not None else None,
        ),
    )


def close_partner_http_clients() -> None:
    """Close the pooled partner clients (process shutdown, tests)."""
    _clients.close()
