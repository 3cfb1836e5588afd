"""URL safety: partner and webhook URLs must be https and reach public addresses.

``check_url`` is the static check used by validation (scheme, host, literal
addresses); ``ensure_public_host`` resolves a host name at connect time, so a
name that later resolves to a private address (DNS rebinding) is still refused.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from tovplus.errors import Forbidden

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def is_public_address(address: str) -> bool:
    """True when ``address`` is a globally routable unicast IP address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(value: str, *, allow_private: bool) -> str | None:
    """Return why ``value`` is not an acceptable partner URL, or ``None`` when it is."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return "Enter a valid URL."
    del port
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "Enter a full URL such as https://partner.example.com."
    if parts.username or parts.password:
        return "The URL must not contain a user name or password."
    if allow_private:
        return None
    if parts.scheme != "https":
        return "The URL must use https."
    host = parts.hostname.rstrip(".").lower()
    if host in _LOCAL_NAMES or host.endswith(".localhost") or host.endswith(".local"):
        return "The URL must point to a public host."
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: resolved and checked again at connect time
    if not is_public_address(host):
        return "The URL must point to a public address."
    return None


def ensure_public_host(host: str, port: int, *, allow_private: bool) -> None:
    """Resolve ``host`` and raise :class:`Forbidden` unless every address is public."""
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Forbidden(f"Could not resolve {host}.") from exc
    for info in infos:
        address = str(info[4][0])
        if not is_public_address(address):
            raise Forbidden(f"{host} resolves to a non-public address.")
