"""Outbound HTTP that cannot be pointed at private addresses: the one client builder that
adapter syncs and webhook deliveries share.

The transport resolves each host itself, refuses it unless every address is public, and
connects to the very address it checked, so DNS rebinding between check and connect
cannot slip a private address in (TLS still verifies the certificate against the name).
Clients follow no redirects, take no proxies from the environment and keep no cookies,
and an answer larger than ``max_response_bytes`` fails as a read error while it streams.
"""

from __future__ import annotations

import http.cookiejar
import socket
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, cast

import httpcore
import httpx

from tovplus.errors import Forbidden, PartnerUnavailable
from tovplus.integrations.urls import is_public_address


class _PublicOnlyBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:  # a failed lookup is a network failure: the caller may retry
            raise httpcore.ConnectError(f"Could not resolve {host}.") from exc
        addresses = [str(info[4][0]) for info in infos]
        if not addresses or not all(is_public_address(a) for a in addresses):
            raise Forbidden(f"{host} resolves to a non-public address.")
        return self._inner.connect_tcp(
            addresses[0], port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise Forbidden("Unix sockets are not reachable from here.")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class PublicOnlyTransport(httpx.HTTPTransport):
    """An HTTP transport that reaches public addresses only, over https when ``require_https``."""

    def __init__(self, *, pool_size: int, require_https: bool) -> None:
        super().__init__(trust_env=False)
        self._require_https = require_https
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=pool_size,
            max_keepalive_connections=pool_size,
            keepalive_expiry=30.0,
            network_backend=_PublicOnlyBackend(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._require_https and request.url.scheme != "https":
            raise Forbidden("Only https URLs may be called.")
        return super().handle_request(request)


class _NoCookies(http.cookiejar.CookieJar):
    """A client shared by many connections must never carry one partner's cookie to another."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def add_cookie_header(self, request: Any) -> None:
        return None

    def set_cookie(self, cookie: Any) -> None:
        return None


class _CappedStream(httpx.SyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream, limit: int, request: httpx.Request) -> None:
        self._stream, self._limit, self._request = stream, limit, request

    def __iter__(self) -> Iterator[bytes]:
        total = 0
        for chunk in self._stream:
            total += len(chunk)
            if total > self._limit:
                raise httpx.ReadError(
                    f"The answer is larger than {self._limit} bytes.", request=self._request
                )
            yield chunk

    def close(self) -> None:
        self._stream.close()


class _CappedTransport(httpx.BaseTransport):
    """Fails an answer once its body passes ``limit`` bytes, so a hostile partner cannot fill memory."""

    def __init__(self, inner: httpx.BaseTransport, limit: int) -> None:
        self._inner, self._limit = inner, limit

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        response.stream = _CappedStream(cast(httpx.SyncByteStream, response.stream), self._limit, request)
        return response

    def close(self) -> None:
        self._inner.close()


#: Called with every outbound request before it is sent (``tovplus.runtime.trace`` adds ``x-request-id``).
REQUEST_HOOKS: list[Callable[[httpx.Request], None]] = []


def _run_request_hooks(request: httpx.Request) -> None:
    for hook in REQUEST_HOOKS:
        hook(request)


def outbound_client(
    *,
    allow_private: bool,
    timeout: httpx.Timeout,
    pool_size: int,
    user_agent: str,
    require_https: bool = True,
    max_response_bytes: int | None = None,
    wrap: Callable[[httpx.BaseTransport], httpx.BaseTransport] | None = None,
) -> httpx.Client:
    """A pooled client for partner or webhook URLs (see the module docstring).

    ``allow_private`` (development and tests) lifts the address and https checks; ``wrap``
    wraps the finished transport (e.g. in a :class:`~tovplus.integrations.politeness.PoliteTransport`).
    """
    transport: httpx.BaseTransport = (
        httpx.HTTPTransport(
            trust_env=False,
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
        )
        if allow_private
        else PublicOnlyTransport(pool_size=pool_size, require_https=require_https)
    )
    if max_response_bytes is not None:
        transport = _CappedTransport(transport, max_response_bytes)
    if wrap is not None:
        transport = wrap(transport)
    return httpx.Client(
        transport=transport,
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        cookies=_NoCookies(),
        headers={"user-agent": user_agent},
        event_hooks={"request": [_run_request_hooks]},
    )


class _BorrowedTransportClient(httpx.Client):
    """A client over another client's pooled transport; closing it leaves the pool open."""

    def close(self) -> None:
        return None


def with_auth(base: httpx.Client, auth: httpx.Auth) -> httpx.Client:
    """A client like ``base`` (same pool, timeouts, headers, hooks, no cookies) that sends ``auth``
    on every request: how an OAuth2 connection's bearer token rides on the shared partner client
    without ever being set on it (other threads use it for other connections)."""
    return _BorrowedTransportClient(
        transport=base._transport,
        timeout=base.timeout,
        follow_redirects=False,
        trust_env=False,
        cookies=_NoCookies(),
        headers=base.headers,
        event_hooks=base.event_hooks,
        auth=auth,
    )


class ClientCache:
    """One pooled client per distinct configuration, built on first use and shared by threads."""

    def __init__(self) -> None:
        self._clients: dict[Hashable, httpx.Client] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], httpx.Client]) -> httpx.Client:
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = build()
            return client

    def close(self) -> None:
        """Close every client (process shutdown, tests)."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


# --- partner failures in words ------------------------------------------------------------

#: The longest ``Retry-After`` honoured (a partner asking for more is retried after this).
MAX_RETRY_AFTER_SECONDS = 3600.0


def unreachable(partner: str, exc: httpx.HTTPError) -> PartnerUnavailable:
    """A transport failure as a planner reads it, never the exception's class name.

    ``partner`` names it in the sentence ("the printer"): "Could not reach the printer at
    print.example" for refused connections and failed lookups, "The printer at print.example
    did not answer in time." for timeouts.
    """
    host = _host_of(exc)
    at = f" at {host}" if host else ""
    if isinstance(exc, httpx.TimeoutException):
        return PartnerUnavailable(f"{partner[:1].upper()}{partner[1:]}{at} did not answer in time.")
    if isinstance(exc, httpx.ConnectError):
        return PartnerUnavailable(f"Could not reach {partner}{at}.")
    return PartnerUnavailable(f"The connection to {partner}{at} broke off before it answered.")


def _host_of(exc: httpx.HTTPError) -> str | None:
    try:
        request = exc.request
    except RuntimeError:  # raised without a request
        return None
    return request.url.host or None


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The answer's ``Retry-After`` in seconds (delta-seconds or an HTTP date), capped; else ``None``."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            return None
        seconds = (moment - datetime.now(UTC)).total_seconds()
    if seconds != seconds or seconds < 0:  # NaN or in the past
        return 0.0 if seconds == seconds else None
    return min(seconds, MAX_RETRY_AFTER_SECONDS)


def busy(partner: str, response: httpx.Response) -> PartnerUnavailable:
    """A 429 (or 503 with ``Retry-After``): retried no earlier than the partner asked."""
    wait = retry_after_seconds(response)
    asked = f" and asked us to wait {wait:.0f} s" if wait else ""
    return PartnerUnavailable(
        f"{partner[:1].upper()}{partner[1:]} is busy (HTTP {response.status_code}){asked}.", retry_after=wait
    )
