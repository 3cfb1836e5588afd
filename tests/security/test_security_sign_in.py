"""Issue 13, finding 7: sign-in throttling.

Failing an account's password must not lock its owner out (per-client and per-account
buckets), and ``X-Forwarded-For`` is believed only from ``TOVPLUS_TRUSTED_PROXIES``, by
uvicorn under ``tovplus serve`` and by the pages alike. The buckets read a clock that the
tests hold still, so argon2's slowness under load cannot refill them mid-test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from tests.support.web import PASSWORD, Person, csrf_of, person
from tovplus.app import create_app
from tovplus.errors import RateLimited, Unauthenticated
from tovplus.runtime import Runtime, build_runtime
from tovplus.services.auth import throttle, web_sessions
from tovplus.settings import Settings
from tovplus.web.clients import client_address, forwarded_client, uvicorn_proxy_options

WRONG = "not the password at all"
ACCOUNT_BURST = throttle.ATTEMPTS_PER_ACCOUNT[1]
CLIENT_BURST = throttle.ATTEMPTS_PER_CLIENT[1]
PAIR_BURST = throttle.FAILURES_PER_ACCOUNT_AND_CLIENT[1]


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(runtime: Runtime) -> Clock:
    c = Clock()
    throttle.use_clock(runtime, c)
    return c


def _fail(rt: Runtime, email: str, client: str) -> None:
    with pytest.raises(Unauthenticated):
        web_sessions.sign_in(rt, email, WRONG, client=client)


def _hammer(rt: Runtime, email: str, client: str, times: int) -> set[str]:
    """Send ``times`` wrong passwords; the answers seen ("401" wrong, "429" throttled)."""
    seen = set()
    for _ in range(times):
        try:
            web_sessions.sign_in(rt, email, WRONG, client=client)
        except Unauthenticated:
            seen.add("401")
        except RateLimited:
            seen.add("429")
    return seen


def _sign_in(rt: Runtime, who: Person, client: str) -> str:
    return web_sessions.sign_in(rt, who.email, PASSWORD, client=client).caller.email


# --- per-account and per-client buckets ------------------------------------------------------


def test_failing_an_accounts_password_does_not_lock_its_owner_out(runtime, clock):  # type: ignore[no-untyped-def]
    owner = person(runtime)
    assert _hammer(runtime, owner.email, "203.0.113.66", ACCOUNT_BURST + PAIR_BURST) == {"401", "429"}
    with pytest.raises(RateLimited):  # the attacker's own client is refused, even with the password
        web_sessions.sign_in(runtime, owner.email, PASSWORD, client="203.0.113.66")
    assert _sign_in(runtime, owner, "198.51.100.7") == owner.email  # the owner is not


def test_the_owner_is_not_locked_out_through_the_pages_either(client, runtime, clock):  # type: ignore[no-untyped-def]
    owner = person(runtime)
    attacker = TestClient(client.app, client=("203.0.113.66", 4000))
    statuses = {_page_sign_in(attacker, owner.email, WRONG) for _ in range(ACCOUNT_BURST + PAIR_BURST)}
    assert statuses == {401, 429}
    assert _page_sign_in(attacker, owner.email, PASSWORD) == 429
    mine = TestClient(client.app, client=("198.51.100.7", 4000))
    assert _page_sign_in(mine, owner.email, PASSWORD) == 303


def test_wrong_passwords_from_any_client_count_against_the_account(runtime, clock):  # type: ignore[no-untyped-def]
    owner, other = person(runtime), person(runtime)
    for n in range(ACCOUNT_BURST):  # one wrong password each from many addresses
        _fail(runtime, owner.email, f"10.9.0.{n}")
    # the account is now over its limit: a client gets only its own few tries on it ...
    for _ in range(PAIR_BURST):
        _fail(runtime, owner.email, "10.9.1.1")
    with pytest.raises(RateLimited) as refused:
        web_sessions.sign_in(runtime, owner.email.upper(), PASSWORD, client="10.9.1.1")
    assert refused.value.retry_after >= 1
    # ... while on an account nobody has been failing, the same number of mistakes is no matter
    for _ in range(PAIR_BURST):
        _fail(runtime, other.email, "10.9.1.2")
    assert _sign_in(runtime, other, "10.9.1.2") == other.email
    # and a client that has not been failing still signs the owner in
    assert _sign_in(runtime, owner, "10.9.2.2") == owner.email


def test_the_buckets_refill_with_time(runtime, clock):  # type: ignore[no-untyped-def]
    owner = person(runtime)
    assert _hammer(runtime, owner.email, "10.8.0.1", ACCOUNT_BURST + PAIR_BURST) == {"401", "429"}
    with pytest.raises(RateLimited) as refused:
        _sign_in(runtime, owner, "10.8.0.1")
    clock.now += refused.value.retry_after
    assert _sign_in(runtime, owner, "10.8.0.1") == owner.email


def test_a_client_over_its_own_limit_gets_429_even_with_the_right_password(runtime, clock):  # type: ignore[no-untyped-def]
    who = person(runtime)
    for n in range(CLIENT_BURST):
        _fail(runtime, f"nobody{n}@example.com", "10.7.0.1")
    with pytest.raises(RateLimited):
        _sign_in(runtime, who, "10.7.0.1")
    assert _sign_in(runtime, who, "10.7.0.2") == who.email


# --- which address is the client's -----------------------------------------------------------


def _page_sign_in(c: TestClient, email: str, password: str, forwarded_for: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    token = csrf_of(c.get("/sign-in", headers=headers).text)
    r = c.post(
        "/sign-in",
        data={"email": email, "password": password, "csrf_token": token, "next": "/"},
        headers=headers,
        follow_redirects=False,
    )
    return r.status_code


@pytest.fixture
def behind_proxy(settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(settings.model_copy(update={"trusted_proxies": ("127.0.0.1",)}))
    throttle.use_clock(rt, Clock())
    yield rt
    rt.close()


def test_forwarded_for_from_an_untrusted_peer_changes_nothing(client, runtime, clock):  # type: ignore[no-untyped-def]
    who = person(runtime)
    local = TestClient(client.app, client=("127.0.0.1", 4000))
    for n in range(CLIENT_BURST):  # each claiming another address
        assert _page_sign_in(local, f"nobody{n}@example.com", WRONG, f"192.0.2.{n}") == 401
    assert _page_sign_in(local, who.email, PASSWORD, "192.0.2.250") == 429


def test_forwarded_for_from_a_trusted_proxy_names_the_client(behind_proxy):  # type: ignore[no-untyped-def]
    who = person(behind_proxy)
    with TestClient(create_app(behind_proxy), client=("127.0.0.1", 4000)) as proxy:
        for n in range(CLIENT_BURST):
            assert _page_sign_in(proxy, f"nobody{n}@example.com", WRONG, "192.0.2.1") == 401
        assert _page_sign_in(proxy, who.email, PASSWORD, "192.0.2.1") == 429
        assert _page_sign_in(proxy, who.email, PASSWORD, "192.0.2.2") == 303


def _request(peer: str, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", f.encode()) for f in forwarded]
    return Request({"type": "http", "client": (peer, 1), "headers": headers, "method": "GET", "path": "/"})


def test_client_address_reads_forwarded_for_like_uvicorn(settings):  # type: ignore[no-untyped-def]
    none = settings
    proxies = settings.model_copy(update={"trusted_proxies": ("10.0.0.0/8", "::1")})
    assert client_address(_request("127.0.0.1", "6.6.6.6"), none) == "127.0.0.1"
    assert client_address(_request("10.1.2.3", "6.6.6.6"), none) == "10.1.2.3"
    assert client_address(_request("10.1.2.3", "6.6.6.6"), proxies) == "6.6.6.6"
    assert client_address(_request("::1", "6.6.6.6, 10.0.0.9"), proxies) == "6.6.6.6"
    assert (
        client_address(_request("10.0.0.1", "1.1.1.1, 6.6.6.6"), proxies) == "6.6.6.6"
    )  # not the forged 1.1.1.1
    assert client_address(_request("10.0.0.1", "1.1.1.1", "6.6.6.6:5555"), proxies) == "6.6.6.6"
    assert client_address(_request("10.0.0.1", "[2001:db8::1]:80"), proxies) == "2001:db8::1"
    assert client_address(_request("10.0.0.1", "10.0.0.2, 10.0.0.3"), proxies) == "10.0.0.2"
    assert client_address(_request("10.0.0.1"), proxies) == "10.0.0.1"
    assert client_address(_request("192.0.2.1", "6.6.6.6"), proxies) == "192.0.2.1"
    # an address uvicorn already resolved comes out the same
    assert forwarded_client("6.6.6.6", ["1.1.1.1, 6.6.6.6"], proxies.trusted_proxies) == "6.6.6.6"


def test_trusted_proxies_setting_is_parsed_and_checked(monkeypatch):  # type: ignore[no-untyped-def]
    from tovplus.errors import ConfigurationError
    from tovplus.settings import load_settings

    monkeypatch.setenv("TOVPLUS_TRUSTED_PROXIES", " 10.0.0.1/8 , ::1,127.0.0.1")
    assert load_settings().trusted_proxies == ("10.0.0.0/8", "::1", "127.0.0.1")
    monkeypatch.setenv("TOVPLUS_TRUSTED_PROXIES", "")
    assert load_settings().trusted_proxies == ()
    monkeypatch.setenv("TOVPLUS_TRUSTED_PROXIES", "proxy.internal")
    with pytest.raises(ConfigurationError, match="TOVPLUS_TRUSTED_PROXIES"):
        load_settings()


# --- what tovplus serve hands uvicorn -----------------------------------------------------------


async def _echo_client(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app answering with the client address uvicorn put in the scope."""
    body = (scope["client"][0] if scope.get("client") else "").encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def _serve_options(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The keyword arguments ``tovplus serve`` passes to ``uvicorn.run``."""
    import uvicorn

    from tovplus import cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw))
    cli._run_http(runtime, "127.0.0.1", 0)
    return {k: v for k, v in seen.items() if k not in ("host", "port")}


def _seen_by_uvicorn(options: dict[str, Any], forwarded_for: str) -> str:
    import uvicorn

    config = uvicorn.Config(_echo_client, host="127.0.0.1", port=0, lifespan="off", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start"
            assert time.monotonic() < deadline, "uvicorn did not start in time"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        r = httpx.get(f"http://127.0.0.1:{port}/", headers={"X-Forwarded-For": forwarded_for}, timeout=5)
        return r.text
    finally:
        server.should_exit = True
        thread.join(10)


def test_serve_tells_uvicorn_to_believe_no_forwarded_header_by_default(runtime, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "127.0.0.1")  # uvicorn's own default, made explicit
    options = _serve_options(runtime, monkeypatch)
    assert _seen_by_uvicorn(options, "192.0.2.99") == "127.0.0.1"
    assert uvicorn_proxy_options(runtime.settings) == {"proxy_headers": False}


def test_serve_tells_uvicorn_to_believe_the_trusted_proxies(behind_proxy, monkeypatch):  # type: ignore[no-untyped-def]
    options = _serve_options(behind_proxy, monkeypatch)
    assert _seen_by_uvicorn(options, "192.0.2.99") == "192.0.2.99"
