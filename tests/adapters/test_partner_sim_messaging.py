"""The messaging partner simulator: its authorization page, its token endpoint (PKCE, single-use
codes, rotating refresh tokens whose reuse revokes the grant), its API and its fault switches."""

from __future__ import annotations

import base64
import os
import secrets
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client

from tests.support.messaging import BASE, MessagingSim, messaging_sim
from tests.support.sync import Proc, free_port, wait_http
from tovplus.partner_sim import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    BackgroundServer,
    MessagingState,
    SimState,
    create_app,
)
from tovplus.partner_sim.messaging import s256

pytestmark = pytest.mark.no_db
REDIRECT = "http://127.0.0.1:8000/v1/integrations/oauth/callback"


@pytest.fixture
def sim() -> Iterator[MessagingSim]:
    with messaging_sim() as s:
        yield s


def authorize_params(verifier: str, **changes: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "state": "st-123",
        "scope": "messages.send rsvps.read",
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
    }
    return params | changes


def allow(sim: MessagingSim, verifier: str) -> str:
    """Press Allow; returns the code from the redirect."""
    r = sim.raw.post(f"{BASE}/oauth/authorize", data={**authorize_params(verifier), "decision": "allow"})
    assert r.status_code == 303
    query = parse_qs(urlsplit(r.headers["location"]).query)
    assert query["state"] == ["st-123"]
    return query["code"][0]


def exchange(sim: MessagingSim, code: str, verifier: str, **changes: str) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
    }
    return sim.raw.post(f"{BASE}/oauth/token", data=data | changes)


def refresh(sim: MessagingSim, token: str) -> httpx.Response:
    basic = base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()
    return sim.raw.post(
        f"{BASE}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
        headers={"Authorization": f"Basic {basic}"},
    )


def me(sim: MessagingSim, token: str) -> int:
    return sim.raw.get(f"{BASE}/me", headers={"Authorization": f"Bearer {token}"}).status_code


# --- the authorization page -------------------------------------------------------------------


def test_the_authorization_page_asks_with_allow_and_deny(sim):
    r = sim.raw.get(f"{BASE}/oauth/authorize", params=authorize_params("v" * 50))
    assert r.status_code == 200
    assert "Allow TOV Plus to send messages and read RSVPs?" in r.text
    assert "value='allow'>Allow</button>" in r.text
    assert "value='deny'>Deny</button>" in r.text
    assert "method='post'" in r.text


def test_deny_redirects_with_access_denied_and_the_state(sim):
    body = {**authorize_params("v" * 50), "decision": "deny"}
    r = sim.raw.post(f"{BASE}/oauth/authorize", data=body)
    assert r.status_code == 303
    assert parse_qs(urlsplit(r.headers["location"]).query) == {
        "error": ["access_denied"],
        "state": ["st-123"],
    }


@pytest.mark.parametrize(
    "changes",
    [{"client_id": "stranger"}, {"redirect_uri": "not a url"}, {"redirect_uri": "ftp://x.example/cb"}],
    ids=["unknown-client", "bad-redirect", "not-http"],
)
def test_an_unknown_client_or_a_bad_redirect_is_a_400_page(sim, changes):
    r = sim.raw.get(f"{BASE}/oauth/authorize", params=authorize_params("v" * 50, **changes))
    assert r.status_code == 400
    assert "<h1>" in r.text
    assert "location" not in r.headers


def test_a_registered_redirect_list_is_enforced(sim):
    body = {"client_id": "other", "client_secret": "other-secret", "redirect_uris": [REDIRECT]}
    assert sim.raw.post(f"{BASE}/_control/clients", json=body).status_code == 200
    ok = sim.raw.get(f"{BASE}/oauth/authorize", params=authorize_params("v" * 50, client_id="other"))
    assert ok.status_code == 200
    elsewhere = authorize_params("v" * 50, client_id="other", redirect_uri="http://evil.example/cb")
    assert sim.raw.get(f"{BASE}/oauth/authorize", params=elsewhere).status_code == 400


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "messages.send contacts.write"}, "invalid_scope"),
    ],
)
def test_a_bad_request_from_a_known_client_goes_back_with_an_error(sim, changes, error):
    r = sim.raw.get(f"{BASE}/oauth/authorize", params=authorize_params("v" * 50, **changes))
    assert r.status_code == 303
    query = parse_qs(urlsplit(r.headers["location"]).query)
    assert query["error"] == [error]
    assert query["state"] == ["st-123"]


# --- the token endpoint -------------------------------------------------------------------------


def test_allow_then_exchange_with_the_right_verifier_gives_tokens_that_work(sim):
    verifier = secrets.token_urlsafe(48)
    r = exchange(sim, allow(sim, verifier), verifier)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "messages.send rsvps.read"
    assert body["access_token"] != body["refresh_token"]
    assert r.headers["cache-control"] == "no-store"
    assert me(sim, body["access_token"]) == 200
    assert sim.stats()["code_exchanges"] == 1


def test_a_wrong_pkce_verifier_is_refused(sim):
    verifier = secrets.token_urlsafe(48)
    code = allow(sim, verifier)
    r = exchange(sim, code, secrets.token_urlsafe(48))
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    assert "code_verifier" in r.json()["error_description"]
    assert exchange(sim, code, "", code_verifier="").json()["error"] == "invalid_request"


def test_a_code_is_single_use_and_its_reuse_revokes_what_it_gave(sim):
    verifier = secrets.token_urlsafe(48)
    code = allow(sim, verifier)
    first = exchange(sim, code, verifier).json()
    again = exchange(sim, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert me(sim, first["access_token"]) == 401


def test_a_code_for_another_redirect_or_an_unknown_code_is_refused(sim):
    verifier = secrets.token_urlsafe(48)
    code = allow(sim, verifier)
    assert (
        exchange(sim, code, verifier, redirect_uri="http://127.0.0.1:9/cb").json()["error"] == "invalid_grant"
    )
    assert exchange(sim, "gm_code_nope", verifier).json()["error"] == "invalid_grant"


def test_codes_expire(sim):
    verifier = secrets.token_urlsafe(48)
    code = allow(sim, verifier)
    sim.clock.now += 601
    assert exchange(sim, code, verifier).json()["error"] == "invalid_grant"


@pytest.mark.parametrize("how", ["wrong-secret", "no-client", "basic-wrong"])
def test_the_client_must_authenticate(sim, how):
    data = {"grant_type": "refresh_token", "refresh_token": sim.tokens.refresh}
    headers: dict[str, str] = {}
    if how == "wrong-secret":
        data |= {"client_id": DEMO_CLIENT_ID, "client_secret": "guess"}
    if how == "basic-wrong":
        headers["Authorization"] = "Basic " + base64.b64encode(f"{DEMO_CLIENT_ID}:guess".encode()).decode()
    r = sim.raw.post(f"{BASE}/oauth/token", data=data, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    assert sim.stats()["refresh_attempts"] == 0


def test_refresh_tokens_rotate_and_a_reused_one_is_refused_and_revokes_the_grant(sim):
    first = sim.tokens.refresh
    r = refresh(sim, first)  # client_secret_basic
    assert r.status_code == 200
    rotated = r.json()
    assert rotated["refresh_token"] != first
    assert rotated["access_token"] != sim.tokens.access
    assert me(sim, rotated["access_token"]) == 200
    reused = refresh(sim, first)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # the whole grant is gone: the newest tokens stop working too
    assert me(sim, rotated["access_token"]) == 401
    assert refresh(sim, rotated["refresh_token"]).json()["error"] == "invalid_grant"
    stats = sim.stats()
    assert stats["refreshes"] == 1
    assert stats["reuse_attempts"] == 1
    assert stats["refresh_attempts"] == 3
    assert [g["revoked"] for g in stats["grants"]] == [True]


def test_the_refresh_log_names_the_generation_each_refresh_presented(sim):
    first = sim.tokens.refresh
    sim.clock.now += 7.5
    second = refresh(sim, first).json()["refresh_token"]
    sim.clock.now += 1.25
    assert refresh(sim, second).status_code == 200
    assert refresh(sim, first).status_code == 400  # a reuse: generation 1 a second time
    log = sim.stats()["refresh_log"]
    assert [(e["generation"], e["current"], e["ok"]) for e in log] == [
        (1, 1, True),
        (2, 2, True),
        (1, 3, False),
    ]
    assert [e["age"] for e in log[:2]] == [7.5, 1.25]
    assert sim.stats()["grants"][0]["generation"] == 3


def test_access_tokens_expire_after_access_ttl(sim):
    sim.control(access_ttl=60)
    fresh = refresh(sim, sim.tokens.refresh).json()
    assert fresh["expires_in"] == 60
    sim.clock.now += 59
    assert me(sim, fresh["access_token"]) == 200
    sim.clock.now += 2
    assert me(sim, fresh["access_token"]) == 401


def test_authlib_runs_the_whole_code_flow_against_it(sim):
    """The framework's OAuth2 client (Authlib) speaks to the simulator as to a real provider."""
    oauth = OAuth2Client(
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        scope="messages.send rsvps.read",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        transport=sim.raw._transport,
    )
    verifier = secrets.token_urlsafe(48)
    url, _state = oauth.create_authorization_url(f"{BASE}/oauth/authorize", code_verifier=verifier)
    page = sim.raw.get(url)
    assert page.status_code == 200
    form = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()} | {"decision": "allow"}
    back = sim.raw.post(f"{BASE}/oauth/authorize", data=form).headers["location"]
    token = oauth.fetch_token(f"{BASE}/oauth/token", authorization_response=back, code_verifier=verifier)
    assert me(sim, token["access_token"]) == 200
    renewed = oauth.refresh_token(f"{BASE}/oauth/token", refresh_token=token["refresh_token"])
    assert renewed["refresh_token"] != token["refresh_token"]
    assert sim.stats()["refreshes"] == 1


# --- fault switches -------------------------------------------------------------------------------


def test_invalid_grant_refuses_every_refresh(sim):
    sim.control(invalid_grant=True)
    assert refresh(sim, sim.tokens.refresh).json()["error"] == "invalid_grant"
    sim.control(invalid_grant=False)
    assert refresh(sim, sim.tokens.refresh).status_code == 200


def test_token_delay_slows_the_token_endpoint(sim):
    sim.control(token_delay_seconds=0.4)
    started = time.monotonic()
    assert refresh(sim, sim.tokens.refresh).status_code == 200
    assert time.monotonic() - started >= 0.4


def test_a_slow_token_call_whose_caller_hangs_up_issues_nothing(caplog):
    """A refresher killed mid-call: its refresh token is not rotated, so the next one may use it."""
    state = MessagingState()
    with BackgroundServer(create_app(SimState(demo=False), state)) as server:
        base = f"{server.url}/messaging"
        minted = httpx.post(f"{base}/_control/grants", json={"client_id": DEMO_CLIENT_ID}).json()
        httpx.post(f"{base}/_control", json={"token_delay_seconds": 0.3})
        form = (
            f"grant_type=refresh_token&refresh_token={minted['refresh_token']}"
            f"&client_id={DEMO_CLIENT_ID}&client_secret={DEMO_CLIENT_SECRET}"
        ).encode()
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(
                b"POST /messaging/oauth/token HTTP/1.1\r\nhost: sim\r\n"
                b"content-type: application/x-www-form-urlencoded\r\n"
                + f"content-length: {len(form)}\r\n\r\n".encode()
                + form
            )
            time.sleep(0.1)  # the call is waiting in the endpoint's delay: hang up
        time.sleep(0.5)
        stats = httpx.get(f"{base}/_control/stats").json()
        assert stats["token_requests"] == 1
        assert stats["abandoned_token_calls"] == 1
        assert stats["refresh_attempts"] == 0
        httpx.post(f"{base}/_control", json={"token_delay_seconds": 0})
        again = httpx.post(
            f"{base}/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": minted["refresh_token"],
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
            },
        )
        assert again.status_code == 200, again.text
    assert "Exception in ASGI application" not in caplog.text


def test_api_401_refuses_every_token_or_the_next_few(sim):
    sim.control(api_401=True)
    assert me(sim, sim.tokens.access) == 401
    sim.control(api_401=2)
    assert [me(sim, sim.tokens.access) for _ in range(3)] == [401, 401, 200]
    assert sim.raw.get(f"{BASE}/me").status_code == 401  # no token at all


@pytest.mark.parametrize(
    "body",
    [
        {"invalid_grant": "yes"},
        {"token_delay_seconds": -1},
        {"api_401": -2},
        {"messages_fail": "often"},
        {"access_ttl": True},
        {"page_size": 0},
        {"mystery": 1},
    ],
)
def test_control_input_is_checked(sim, body):
    assert sim.raw.post(f"{BASE}/_control", json=body).status_code == 422
    assert sim.raw.post(f"{BASE}/_control", content=b"{nope").status_code == 400


def test_minting_a_grant_needs_a_registered_client(sim):
    assert sim.raw.post(f"{BASE}/_control/grants", json={"client_id": "stranger"}).status_code == 422
    assert sim.raw.post(f"{BASE}/_control/grants", json={}).status_code == 422
    minted = sim.raw.post(f"{BASE}/_control/grants", json={"client_id": DEMO_CLIENT_ID}).json()
    assert {"access_token", "refresh_token", "expires_in"} <= set(minted)


# --- the API ----------------------------------------------------------------------------------


def test_me_names_the_account(sim):
    r = sim.http.get(f"{BASE}/me")
    assert r.status_code == 200
    assert isinstance(r.json()["account"], str)


def test_rsvps_come_in_pages_with_an_opaque_cursor(sim):
    sim.control(page_size=2)
    sim.rsvps(("g1", "yes"), ("g2", "no"), ("g3", "maybe"))
    first = sim.http.get(f"{BASE}/rsvps").json()
    assert [r["guest_id"] for r in first["rsvps"]] == ["g1", "g2"]
    assert set(first["rsvps"][0]) == {"guest_id", "response", "updated_at"}
    second = sim.http.get(f"{BASE}/rsvps", params={"cursor": first["next_cursor"]}).json()
    assert second == {"rsvps": [second["rsvps"][0]], "next_cursor": None}
    assert second["rsvps"][0]["guest_id"] == "g3"
    assert sim.http.get(f"{BASE}/rsvps", params={"cursor": "bogus"}).status_code == 400


def test_an_updated_rsvp_moves_after_the_cursor(sim):
    sim.control(page_size=10)
    sim.rsvps(("g1", "yes"), ("g2", "no"))
    sim.control(page_size=1)
    cursor = sim.http.get(f"{BASE}/rsvps").json()["next_cursor"]
    sim.rsvps(("g1", "no"))
    after = sim.http.get(f"{BASE}/rsvps", params={"cursor": cursor}).json()
    assert [(r["guest_id"], r["response"]) for r in after["rsvps"]] == [("g2", "no")]
    last = sim.http.get(f"{BASE}/rsvps", params={"cursor": after["next_cursor"]}).json()
    assert [(r["guest_id"], r["response"]) for r in last["rsvps"]] == [("g1", "no")]


@pytest.mark.parametrize(
    "body",
    [{"rsvps": [{"guest_id": "g1", "response": "perhaps"}]}, {"rsvps": [{"response": "yes"}]}, {"rsvps": 3}],
)
def test_control_rsvps_are_checked(sim, body):
    assert sim.raw.post(f"{BASE}/_control/rsvps", json=body).status_code == 422


MESSAGE: dict[str, Any] = {
    "sender_name": "Olena & Taras",
    "message": "Join us!",
    "recipients": [{"guest_id": "g1", "name": "Iryna", "email": None}],
}


def test_messages_honour_the_idempotency_key_and_are_stored(sim):
    first = sim.http.post(f"{BASE}/messages", json=MESSAGE, headers={"Idempotency-Key": "arun_1"})
    again = sim.http.post(f"{BASE}/messages", json=MESSAGE, headers={"Idempotency-Key": "arun_1"})
    other = sim.http.post(f"{BASE}/messages", json=MESSAGE, headers={"Idempotency-Key": "arun_2"})
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert first.json()["accepted"] == 1
    assert other.json()["batch_id"] != first.json()["batch_id"]
    stats = sim.stats()
    assert stats["idempotency_keys"] == ["arun_1", "arun_2"]
    assert stats["message_replays"] == 1
    assert stats["message_requests"] == 3
    assert stats["messages"][0]["recipients"] == MESSAGE["recipients"]


def test_messages_fail_answers_503_and_bad_bodies_are_422(sim):
    sim.control(messages_fail=1)
    assert sim.http.post(f"{BASE}/messages", json=MESSAGE).status_code == 503
    assert sim.http.post(f"{BASE}/messages", json=MESSAGE).status_code == 202
    for bad in ({**MESSAGE, "recipients": []}, {**MESSAGE, "message": 5}, {"recipients": [{"name": "x"}]}):
        assert sim.http.post(f"{BASE}/messages", json=bad).status_code == 422
    assert len(sim.stats()["messages"]) == 1


def test_the_api_needs_a_bearer(sim):
    for method, path in (("GET", "/me"), ("GET", "/rsvps"), ("POST", "/messages")):
        r = sim.raw.request(method, f"{BASE}{path}", json=MESSAGE)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_the_partner_sim_command_serves_the_messaging_partner(tmp_path):
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    proc = Proc(["partner-sim", "--port", str(port)], env, tmp_path / "sim.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc, timeout=30)
        base = f"http://127.0.0.1:{port}/messaging"
        minted = httpx.post(f"{base}/_control/grants", json={"client_id": DEMO_CLIENT_ID}).json()
        r = httpx.get(f"{base}/me", headers={"Authorization": f"Bearer {minted['access_token']}"})
        assert r.status_code == 200
    finally:
        assert proc.stop() in (0, -15)
    assert "/messaging" in proc.output()


@pytest.mark.parametrize(
    "body",
    [
        {"client_secret": "s"},
        {"client_id": "c"},
        {"client_id": "c", "client_secret": ""},
        {"client_id": "c", "client_secret": "s", "redirect_uris": "x"},
    ],
)
def test_control_clients_are_checked(sim, body):
    assert sim.raw.post(f"{BASE}/_control/clients", json=body).status_code == 422
