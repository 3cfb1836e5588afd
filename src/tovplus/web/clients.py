"""Which address a page request comes from: the peer, unless it is a trusted reverse proxy.

``TOVPLUS_TRUSTED_PROXIES`` lists the proxies (addresses or networks; default none) whose
``X-Forwarded-For`` is believed. ``tovplus serve`` hands the same list to uvicorn
(:func:`uvicorn_proxy_options`), and :func:`client_address` reads the header the way
uvicorn's proxy middleware does: the nearest address that is not a trusted proxy, walking
the header from the right. Applied to an address uvicorn already resolved it gives the same
answer again, so the pages see one client address however the app is served.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from starlette.requests import Request

from tovplus.settings import Settings

UNKNOWN = "unknown"
#: Longest address kept (an IPv6 address with a zone fits); longer values are not addresses.
_MAX_ADDRESS = 100

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def _networks(proxies: tuple[str, ...]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def is_trusted(host: str, proxies: tuple[str, ...]) -> bool:
    """True when ``host`` is an IP address inside one of ``proxies``."""
    if not proxies or len(host) > _MAX_ADDRESS:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in _networks(proxies))


def _host_of(value: str) -> str:
    """The host of one ``X-Forwarded-For`` item: ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::1``."""
    value = value.strip()
    if value.startswith("[") and "]" in value:
        return value[1 : value.index("]")]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def forwarded_client(peer: str, forwarded_for: Iterable[str], proxies: tuple[str, ...]) -> str:
    """The client behind ``peer``: when it is a trusted proxy, the nearest untrusted forwarded hop."""
    if not is_trusted(peer, proxies):
        return peer
    hops = [_host_of(item) for header in forwarded_for for item in header.split(",")]
    hops = [h for h in hops if h]
    for hop in reversed(hops):
        if not is_trusted(hop, proxies):
            return hop[:_MAX_ADDRESS]
    return hops[0][:_MAX_ADDRESS] if hops else peer  # every hop is a proxy: the first one asked


def client_address(request: Request, settings: Settings) -> str:
    """The address of the client that sent ``request`` (``"unknown"`` when there is none)."""
    peer = request.client.host if request.client else None
    if not peer:
        return UNKNOWN
    return forwarded_client(peer, request.headers.getlist("x-forwarded-for"), settings.trusted_proxies)


def uvicorn_proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy options for ``settings``: forwarded headers only from the trusted proxies.

    Without this uvicorn believes ``X-Forwarded-For`` from 127.0.0.1 (its default), so any
    local client could claim to be anyone.
    """
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(settings.trusted_proxies)}
