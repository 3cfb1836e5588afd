"""The process's pooled HTTP client for partner APIs (what adapters get as ``SyncContext.http``).

Built from :func:`tovplus.integrations.http.outbound_client` with the settings that apply to
partner calls, once per distinct configuration, and shared by every sync thread.
"""

from __future__ import annotations

import httpx

from tovplus.integrations.http import ClientCache, outbound_client
from tovplus.settings import Settings

#: The largest answer a partner may send to one sync request; a larger one fails the attempt (retried).
PARTNER_RESPONSE_LIMIT_BYTES = 16 * 1024 * 1024
_clients = ClientCache()


def partner_http_client(settings: Settings) -> httpx.Client:
    """The process's client for partner APIs: timeouts, connection reuse, no redirects, no cookies,
    no proxies from the environment, and non-public addresses refused unless ``allow_private_urls``."""
    timeout = settings.sync_http_timeout_seconds
    return _clients.get(
        (settings.allow_private_urls, timeout, settings.worker_threads, settings.sync_concurrency),
        lambda: outbound_client(
            allow_private=settings.allow_private_urls,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            pool_size=max(20, settings.worker_threads * 4, settings.sync_concurrency),
            user_agent="TOVPlus-Sync/1",
            max_response_bytes=PARTNER_RESPONSE_LIMIT_BYTES,
        ),
    )


def close_partner_http_clients() -> None:
    """Close the pooled partner clients (process shutdown, tests)."""
    _clients.close()
