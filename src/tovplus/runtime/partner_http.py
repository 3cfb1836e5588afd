"""The process's pooled HTTP client for partner APIs (what adapters get as ``SyncContext.http``).

Built from :func:`tovplus.integrations.http.outbound_client` with the settings that apply to
partner calls, once per distinct configuration, and shared by every sync thread.
"""

from __future__ import annotations

import itertools
import threading

import httpx

from tovplus.integrations.http import ClientCache, outbound_client
from tovplus.integrations.politeness import PartnerGates, PartnerLimits, PoliteTransport
from tovplus.settings import Settings

#: The largest answer a partner may send to one sync request; a larger one fails the attempt (retried).
PARTNER_RESPONSE_LIMIT_BYTES = 16 * 1024 * 1024
_clients = ClientCache()
#: One gate per adapter that declares ``partner_limits``, shared by every thread of the process.
partner_gates = PartnerGates()

#: Threads per connection pool. httpcore's pool does every request's bookkeeping under one lock, in
#: time that grows with its open connections; with the sync engine's dozens of threads on one pool,
#: most of them waited there (py-spy against a partner answering in 200 ms: 96 of 128 threads in
#: ``ConnectionPool.handle_request`` or ``PoolByteStream.close``, and the process stuck at about 70
#: syncs/s whatever the concurrency). So the process keeps one pool per this many threads, and each
#: thread sticks to the pool it was dealt first (round robin), with the pool sizes adding up as before.
THREADS_PER_POOL = 16
_dealt = itertools.count()
_thread_pool = threading.local()


def _shard(shards: int) -> int:
    """This thread's pool among ``shards`` (the same one for the thread's life)."""
    mine: int | None = getattr(_thread_pool, "index", None)
    if mine is None:
        mine = _thread_pool.index = next(_dealt)
    return mine % shards


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
    pool_size = max(20, settings.worker_threads * 4, settings.sync_concurrency)
    shards = max(1, settings.sync_concurrency // THREADS_PER_POOL)
    shard = _shard(shards)
    return _clients.get(
        (
            settings.allow_private_urls,
            timeout,
            settings.worker_threads,
            settings.sync_concurrency,
            own,
            shard,
        ),
        lambda: outbound_client(
            allow_private=settings.allow_private_urls,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            pool_size=max(THREADS_PER_POOL, -(-pool_size // shards)),
            user_agent="TOVPlus-Sync/1",
            max_response_bytes=PARTNER_RESPONSE_LIMIT_BYTES,
            wrap=(lambda inner: PoliteTransport(inner, gate)) if gate is not None else None,
        ),
    )


def close_partner_http_clients() -> None:
    """Close the pooled partner clients (process shutdown, tests)."""
    _clients.close()
