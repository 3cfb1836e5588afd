"""URL safety: partner and webhook URLs must be https and reach public addresses.

``check_url`` is the static check used by validation (scheme, host, literal
addresses); ``tovplus.integrations.http`` checks every resolved address again at
connect time, so a name that later resolves to a private address (DNS rebinding)
is still refused.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

#: A host name in its ASCII (IDNA) form: letters, digits, ``-``, ``_`` and dots.
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
#: A label that makes a host an IPv4 number rather than a name (decimal, octal or hex).
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
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


def _numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address of a host written as a number (``2130706433``, ``127.1``, ``0x7f.0.0.1``).

    Resolvers accept these forms, so they are IPv4 literals. Raises ``ValueError`` for a
    numeric host that is no valid address (``999.1.1.1``); ``None`` for a host name.
    """
    last = host.split(".")[-1]
    if not _NUMERIC_LABEL.fullmatch(last):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        raise ValueError(host) from None


def check_url(value: str, *, allow_private: bool) -> str | None:
    """Return why ``value`` is not an acceptable partner URL, or ``None`` when it is."""
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return "The URL must not contain spaces or control characters."
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return "Enter a valid URL."
    del port
    if parts.scheme.lower() not in ("https", "http") or not parts.hostname:
        return "Enter a full URL such as https://partner.example.com."
    if parts.username or parts.password or "@" in parts.netloc:
        return "The URL must not contain a user name or password."
    host = parts.hostname.rstrip(".").lower()
    literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    if ":" in host:  # only an IPv6 literal has colons in its host
        try:
            literal = ipaddress.IPv6Address(host)
        except ValueError:
            return "Enter a valid URL."
    else:
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return "Enter a valid URL."
        if not _HOST_NAME.fullmatch(ascii_host):
            return "Enter a valid URL."
        try:
            literal = _numeric_ipv4(ascii_host)
        except ValueError:
            return "Enter a valid URL."
    if allow_private:
        return None
    if parts.scheme.lower() != "https":
        return "The URL must use https."
    if literal is None:
        if host in _LOCAL_NAMES or host.endswith(".localhost") or host.endswith(".local"):
            return "The URL must point to a public host."
        return None  # a name: resolved and checked again at connect time
    if not is_public_address(str(literal)):
        return "The URL must point to a public address."
    return None
