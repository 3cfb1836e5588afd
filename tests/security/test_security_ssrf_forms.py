"""Issue 13, finding 1: IPv6 forms that carry an IPv4 address, and host names in Unicode.

Every IPv6 form that embeds an IPv4 address (NAT64, local-use NAT64, 6to4, IPv4-compatible,
IPv4-mapped, Teredo server and client) is judged by the IPv4 inside it: refused at form time
(``check_url``, the webhook endpoint and partner ``api_base_url`` routes) and at send time
(the outbound client's connect-time check); the same forms around a public IPv4 pass.
Host names are mapped (UTS 46: NFKC, case folding, ideographic dots) before they are judged.
"""

# ruff: noqa: RUF001 - look-alike characters in host names are what these tests are about

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import httpcore
import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Api, assert_error
from tests.webhooks.test_webhooks_delivery import tuned
from tovplus.app import create_app
from tovplus.errors import Forbidden
from tovplus.integrations import urls
from tovplus.integrations.http import outbound_client
from tovplus.integrations.urls import check_url, is_public_address
from tovplus.runtime import Runtime

TEREDO_SERVER = IPv4Address("65.54.227.120")
TEREDO_CLIENT = IPv4Address("8.8.8.8")


def _teredo(server: IPv4Address, client: IPv4Address) -> IPv6Address:
    """``2001:0:<server>:<flags>:<port>:<client XOR ffffffff>`` (RFC 4380)."""
    return IPv6Address(
        (0x2001_0000 << 96) | (int(server) << 64) | (0x8000_63BF << 32) | (int(client) ^ 0xFFFF_FFFF)
    )


#: Each IPv6 form that embeds an IPv4 address, built around a given IPv4.
FORMS: dict[str, Callable[[IPv4Address], IPv6Address]] = {
    "nat64 64:ff9b::/96": lambda v4: IPv6Address((0x64_FF9B << 96) | int(v4)),
    "local nat64 64:ff9b:1::/48": lambda v4: IPv6Address((0x64_FF9B_0001 << 80) | int(v4)),
    "6to4 2002::/16": lambda v4: IPv6Address((0x2002 << 112) | (int(v4) << 80) | 1),
    "ipv4-compatible ::a.b.c.d": lambda v4: IPv6Address(int(v4)),
    "ipv4-mapped ::ffff:a.b.c.d": lambda v4: IPv6Address((0xFFFF << 32) | int(v4)),
    "teredo server 2001::/32": lambda v4: _teredo(v4, TEREDO_CLIENT),
    "teredo client 2001::/32": lambda v4: _teredo(TEREDO_SERVER, v4),
}

PRIVATE_IPV4 = [
    "10.0.0.1",  # private
    "172.16.5.4",  # private
    "192.168.1.1",  # private
    "127.0.0.1",  # loopback
    "169.254.169.254",  # link-local (cloud metadata)
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "0.0.0.0",  # noqa: S104 - this network
    "192.0.2.1",  # documentation
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
]
PUBLIC_IPV4 = ["8.8.8.8", "1.1.1.1", "93.184.215.14"]

PRIVATE_CASES = [
    pytest.param(form(IPv4Address(v4)), IPv4Address(v4), id=f"{name}:{v4}")
    for name, form in FORMS.items()
    for v4 in PRIVATE_IPV4
]
PUBLIC_CASES = [
    pytest.param(form(IPv4Address(v4)), IPv4Address(v4), id=f"{name}:{v4}")
    for name, form in FORMS.items()
    for v4 in PUBLIC_IPV4
]


def url_of(address: IPv6Address, path: str = "/") -> str:
    return f"https://[{address}]{path}"


# --- the address judgement -----------------------------------------------------------------


@pytest.mark.no_db
@pytest.mark.parametrize(("address", "v4"), PRIVATE_CASES)
def test_an_ipv6_form_around_a_non_public_ipv4_is_not_public(address: IPv6Address, v4: IPv4Address):
    assert not is_public_address(str(address))
    assert check_url(url_of(address), allow_private=False) == "The URL must point to a public address."


@pytest.mark.no_db
@pytest.mark.parametrize(("address", "v4"), PUBLIC_CASES)
def test_an_ipv6_form_around_a_public_ipv4_is_public(address: IPv6Address, v4: IPv4Address):
    assert is_public_address(str(address))
    assert check_url(url_of(address), allow_private=False) is None


@pytest.mark.no_db
@pytest.mark.parametrize(("address", "v4"), PRIVATE_CASES + PUBLIC_CASES)
def test_the_embedded_ipv4_is_extracted(address: IPv6Address, v4: IPv4Address):
    assert v4 in (urls.embedded_ipv4(address) or ())


@pytest.mark.no_db
def test_teredo_yields_the_server_and_the_deobfuscated_client_and_ordinary_addresses_none():
    address = IPv6Address("2001:0:4136:e378:8000:63bf:3fff:fdd2")
    assert urls.embedded_ipv4(address) == (IPv4Address("65.54.227.120"), IPv4Address("192.0.2.45"))
    assert not is_public_address(str(address))  # the client is a documentation address
    for ordinary in ("2606:4700:4700::1111", "2a00:1450:4001:80b::200e"):
        assert urls.embedded_ipv4(IPv6Address(ordinary)) is None
        assert is_public_address(ordinary)
        assert check_url(f"https://[{ordinary}]/", allow_private=False) is None


@pytest.mark.no_db
@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b:1:808:8:800::",  # local-use NAT64 with a /48../64 layout: where the IPv4 sits is unknown
        "64:ff9b:1:0:100:0:808:808",  # a non-zero u-octet: not the /96 layout either
    ],
)
def test_a_local_nat64_address_outside_the_96_layout_is_not_public(address: str):
    assert not is_public_address(address)
    assert check_url(f"https://[{address}]/", allow_private=False) is not None


# --- host names: UTS 46 / NFKC before the check ----------------------------------------------


LOCAL_NAME = "The URL must point to a public host."
LOCAL_NUMBER = "The URL must point to a public address."


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://ⓛocalhost/", LOCAL_NAME),
        ("https://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", LOCAL_NAME),
        ("https://ＬＯＣＡＬＨＯＳＴ/", LOCAL_NAME),
        ("https://LOCALℎost/", LOCAL_NAME),
        ("https://printer.ⓛocalhost/", LOCAL_NAME),
        ("https://printer.ⓛocal/", LOCAL_NAME),
        ("https://printer.ｌｏｃａｌ./", LOCAL_NAME),
        ("https://localhost。/", LOCAL_NAME),
        ("https://１２７.０.０.１/", LOCAL_NUMBER),
        ("https://①②⑦.0.0.1/", LOCAL_NUMBER),
        ("https://127。0。0。1/", LOCAL_NUMBER),
    ],
)
def test_a_unicode_spelling_of_a_local_name_is_judged_as_that_name(url: str, problem: str):
    assert check_url(url, allow_private=False) == problem
    assert check_url(url, allow_private=True) is None


IDNA_PROBLEM = "The host name is not a valid internationalised domain name."


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://☃.example/", IDNA_PROBLEM),  # a symbol: IDNA 2003 took it, IDNA 2008 does not
        ("https://\U0001f600.example/", IDNA_PROBLEM),
        ("https://\u0301printer.example/", IDNA_PROBLEM),  # a label that starts with a combining mark
        ("https://printer\u05d0.example/", IDNA_PROBLEM),  # left-to-right and right-to-left in one label
        ("https://bücher.example/api", None),
        ("https://ＰＲＩＮＴＥＲ.example/", None),
        ("https://straße.de/", None),
    ],
)
def test_a_host_that_fails_idna_is_refused_with_a_clear_error(url: str, problem: str | None):
    for allow in (False, True):
        assert check_url(url, allow_private=allow) == problem


# --- send time: the outbound client's connect-time check -------------------------------------


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Addresses the outbound client tried to connect to (no real connection is made)."""
    seen: list[str] = []

    def connect_tcp(self: Any, host: str, port: int, **kwargs: Any) -> httpcore.NetworkStream:
        seen.append(host)
        raise httpcore.ConnectError("not connecting in tests")

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)
    return seen


def _resolve_to(monkeypatch: pytest.MonkeyPatch, address: IPv6Address) -> None:
    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (str(address), port, 0, 0))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def outbound() -> Iterator[httpx.Client]:
    with outbound_client(allow_private=False, timeout=httpx.Timeout(2), pool_size=1, user_agent="test") as c:
        yield c


@pytest.mark.no_db
@pytest.mark.parametrize(("address", "v4"), PRIVATE_CASES)
def test_send_time_refuses_a_name_resolving_to_a_form_around_a_non_public_ipv4(
    monkeypatch: pytest.MonkeyPatch,
    connects: list[str],
    outbound: httpx.Client,
    address: IPv6Address,
    v4: Any,
):
    _resolve_to(monkeypatch, address)
    with pytest.raises(Forbidden, match="resolves to a non-public address"):
        outbound.get("https://partner.example.com/api")
    assert connects == []


@pytest.mark.no_db
@pytest.mark.parametrize(("address", "v4"), PRIVATE_CASES)
def test_send_time_refuses_a_literal_form_around_a_non_public_ipv4(
    connects: list[str], outbound: httpx.Client, address: IPv6Address, v4: Any
):
    with pytest.raises(Forbidden, match="non-public address"):
        outbound.get(url_of(address))
    assert connects == []


@pytest.mark.no_db
@pytest.mark.parametrize(("address", "v4"), PUBLIC_CASES)
def test_send_time_connects_to_a_form_around_a_public_ipv4(
    monkeypatch: pytest.MonkeyPatch,
    connects: list[str],
    outbound: httpx.Client,
    address: IPv6Address,
    v4: Any,
):
    _resolve_to(monkeypatch, address)
    with pytest.raises(httpx.ConnectError):
        outbound.get("https://partner.example.com/api")
    assert connects == [str(address)]


# --- through the API ---------------------------------------------------------------------------

PRIVATE_URLS = [
    "https://[64:ff9b::a00:1]/tov",
    "https://[64:ff9b:1::a9fe:a9fe]/tov",
    "https://[2002:a00:1::1]/tov",
    "https://[::10.0.0.1]/tov",
    "https://[::ffff:127.0.0.1]/tov",
    f"https://[{_teredo(TEREDO_SERVER, IPv4Address('192.168.1.1'))}]/tov",
    "https://ⓛocalhost/tov",
]
PUBLIC_URLS = [
    "https://[64:ff9b::808:808]/tov",
    "https://[2002:808:808::1]/tov",
    "https://[::ffff:8.8.8.8]/tov",
    f"https://[{_teredo(TEREDO_SERVER, TEREDO_CLIENT)}]/tov",
]


@pytest.fixture
def strict_client(runtime: Runtime) -> Iterator[TestClient]:
    """The API of a deployment where private URLs are not allowed (the production default)."""
    with TestClient(create_app(tuned(runtime, allow_private_urls=False)), raise_server_exceptions=False) as c:
        yield c


def _endpoints(occasion_id: str) -> str:
    return f"/v1/occasions/{occasion_id}/webhook-endpoints"


def _connections(occasion_id: str) -> str:
    return f"/v1/occasions/{occasion_id}/integrations/connections"


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_webhook_endpoint_with_such_a_url_is_422(api: Api, strict_client: TestClient, url: str):
    token = api.user("planner")
    occ = api.occasion(token)
    body = {"url": url, "event_types": ["integration.sync_completed"]}
    error = assert_error(strict_client.post(_endpoints(occ), json=body, headers=api.auth(token)), 422)
    assert error["code"] == "invalid_input"
    assert [(f["field"], f["code"]) for f in error["fields"]] == [("url", "invalid_url")]
    assert strict_client.get(_endpoints(occ), headers=api.auth(token)).json()["endpoints"] == []


@pytest.mark.parametrize("url", PUBLIC_URLS)
def test_webhook_endpoint_with_a_public_form_is_created(api: Api, strict_client: TestClient, url: str):
    token = api.user("planner")
    occ = api.occasion(token)
    body = {"url": url, "event_types": ["integration.sync_completed"]}
    r = strict_client.post(_endpoints(occ), json=body, headers=api.auth(token))
    assert r.status_code == 201, r.text


def _partner(url: str, state: str) -> dict[str, Any]:
    return {
        "integration_key": "printing_partner",
        "config": {"account_id": "acct-123", "api_base_url": url},
        "secrets": {"api_key": "pk_live_ABCDEFGHIJKLMNOP"},
        "state": state,
    }


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_partner_api_base_url_with_such_a_url_is_refused(api: Api, strict_client: TestClient, url: str):
    token = api.user("planner")
    occ = api.occasion(token)
    r = strict_client.post(_connections(occ), json=_partner(url, "enabled"), headers=api.auth(token))
    error = assert_error(r, 409, "validation_failed")
    assert [(f["field"], f["code"]) for f in error["fields"]] == [("config.api_base_url", "invalid_url")]
    overview = strict_client.get(f"/v1/occasions/{occ}/integrations", headers=api.auth(token))
    assert overview.json()["connections"] == []
    draft = strict_client.post(_connections(occ), json=_partner(url, "draft"), headers=api.auth(token))
    assert draft.status_code == 201, draft.text
    errors = draft.json()["connection"]["validation"]["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("config.api_base_url", "invalid_url")]


@pytest.mark.parametrize("url", PUBLIC_URLS)
def test_partner_api_base_url_with_a_public_form_is_accepted(api: Api, strict_client: TestClient, url: str):
    token = api.user("planner")
    occ = api.occasion(token)
    r = strict_client.post(_connections(occ), json=_partner(url, "enabled"), headers=api.auth(token))
    assert r.status_code == 201, r.text
    assert r.json()["connection"]["validation"]["errors"] == []
