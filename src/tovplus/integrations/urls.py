"""URL safety: partner and webhook URLs must be https and reach public addresses.

``check_url`` is the static check used by validation (scheme, host, literal
addresses); ``tovplus.integrations.http`` checks every resolved address again at
connect time, so a name that later resolves to a private address (DNS rebinding)
is still refused. Both judge an address with ``is_public_address``, which looks through
the IPv6 forms that carry an IPv4 address (``embedded_ipv4``).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from urllib.parse import urlsplit

import idna

#: A host name in its ASCII (IDNA) form: letters, digits, ``-``, ``_`` and dots.
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
#: A label that makes a host an IPv4 number rather than a name (decimal, octal or hex).
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


_LOW32 = 0xFFFF_FFFF
_LAST_32_BITS = (
    IPv6Network("::ffff:0:0/96"),  # IPv4-mapped
    IPv6Network("::/96"),  # IPv4-compatible (deprecated; also :: and ::1)
    IPv6Network("64:ff9b::/96"),  # NAT64, well-known prefix (RFC 6052)
)
_LOCAL_NAT64 = IPv6Network("64:ff9b:1::/48")  # NAT64, local-use prefix (RFC 8215)
_SIX_TO_FOUR = IPv6Network("2002::/16")  # 6to4 (RFC 3056): the IPv4 is bits 16-47
_TEREDO = IPv6Network("2001::/32")  # Teredo (RFC 4380): server bits 32-63, client last 32 bits inverted


def embedded_ipv4(ip: IPv6Address) -> tuple[IPv4Address, ...] | None:
    """The IPv4 addresses a packet to ``ip`` may end up at, or ``None`` for an ordinary IPv6 address.

    A translator or relay (NAT64, 6to4, Teredo) delivers to the IPv4 inside the address, so
    that IPv4 decides whether the address is public. The local-use NAT64 prefix lets the
    operator choose where the IPv4 sits; only the /96 layout (bits 48-95 zero) is read, and
    any other address in it yields ``0.0.0.0`` (never public).
    """
    n = int(ip)
    if any(ip in network for network in _LAST_32_BITS):
        return (IPv4Address(n & _LOW32),)
    if ip in _LOCAL_NAT64:
        return (IPv4Address(n & _LOW32 if (n >> 32) & (2**48 - 1) == 0 else 0),)
    if ip in _SIX_TO_FOUR:
        return (IPv4Address((n >> 80) & _LOW32),)
    if ip in _TEREDO:
        return (IPv4Address((n >> 64) & _LOW32), IPv4Address(~n & _LOW32))
    return None


def _is_public(ip: IPv4Address | IPv6Address) -> bool:
    return ip.is_global and not ip.is_multicast


def is_public_address(address: str) -> bool:
    """True when ``address`` is a globally routable unicast IP address.

    An IPv6 address that carries IPv4 addresses (see ``embedded_ipv4``) is public when each
    of them is.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, IPv6Address):
        embedded = embedded_ipv4(ip)
        if embedded is not None:
            return all(_is_public(v4) for v4 in embedded)
    return _is_public(ip)


def _ascii_host(host: str) -> str:
    """``host`` as the resolver sees it: UTS 46 mapping (NFKC, case folding, ideographic dots)
    and then IDNA per non-ASCII label, so ``ⓛocalhost`` is ``localhost``.

    Raises ``idna.IDNAError`` (a ``UnicodeError``) for a name IDNA refuses.
    """
    mapped = idna.uts46_remap(host, std3_rules=False, transitional=False).rstrip(".")
    return ".".join(
        label if label.isascii() else idna.alabel(label).decode("ascii") for label in mapped.split(".")
    )


def _numeric_ipv4(host: str) -> IPv4Address | None:
    """The address of a host written as a number (``2130706433``, ``127.1``, ``0x7f.0.0.1``).

    Resolvers accept these forms, so they are IPv4 literals. Raises ``ValueError`` for a
    numeric host that is no valid address (``999.1.1.1``); ``None`` for a host name.
    """
    last = host.split(".")[-1]
    if not _NUMERIC_LABEL.fullmatch(last):
        return None
    try:
        return IPv4Address(socket.inet_aton(host))
    except OSError:
        raise ValueError(host) from None


def check_url(value: str, *, allow_private: bool) -> str | None:
    """Return why ``value`` is not an acceptable partner URL, or ``None`` when it is."""
    return _check_url(value, allow_private)


#: ``check_url`` is pure (no DNS), and every connection view validates its adapter's URLs again:
#: a list of 50 connections of one partner asks the same question 50 times (issue 20,
#: docs/benchmarks.md "Lists"). The answers are remembered for the 1,024 most recent distinct URLs
#: (at most 4 KiB each: a few MiB however many URLs a caller tries).
@lru_cache(maxsize=1024)
def _check_url(value: str, allow_private: bool) -> str | None:
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
    literal: IPv4Address | IPv6Address | None
    if ":" in host:  # only an IPv6 literal has colons in its host
        try:
            literal = IPv6Address(host)
        except ValueError:
            return "Enter a valid URL."
    else:
        try:
            host = _ascii_host(host)
        except UnicodeError:
            return "The host name is not a valid internationalised domain name."
        if not _HOST_NAME.fullmatch(host):
            return "Enter a valid URL."
        try:
            literal = _numeric_ipv4(host)
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
