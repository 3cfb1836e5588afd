"""Signing in and out of the pages: argon2id passwords, session cookies, CSRF, redirects."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.processes.test_cli import TOVPLUS, cli_env
from tests.support.web import PASSWORD, WebUser, csrf_of, occasion, person
from tovplus.app import create_app
from tovplus.db.models import User, UserToken
from tovplus.db.types import utcnow
from tovplus.errors import InvalidInput, RateLimited, Unauthenticated
from tovplus.runtime import build_runtime
from tovplus.services.auth import sha256_hex, web_sessions
from tovplus.web.security import SESSION_COOKIE

STDIN_JSON = ("--password", "-", "--json")


def _set_cookie_headers(response) -> list[str]:  # type: ignore[no-untyped-def]
    return response.headers.get_list("set-cookie")


def _session_cookie(response) -> str:  # type: ignore[no-untyped-def]
    headers = [h for h in _set_cookie_headers(response) if h.startswith(f"{SESSION_COOKIE}=")]
    assert len(headers) == 1, _set_cookie_headers(response)
    return headers[0]


def test_passwords_are_hashed_with_argon2id(runtime):
    who = person(runtime)
    with runtime.db.read() as session:
        stored = session.scalar(select(User.password_hash).where(User.id == who.caller.user_id))
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    with pytest.raises(InvalidInput):
        web_sessions.hash_password("short")


def test_sign_in_sets_an_httponly_samesite_cookie_stored_as_a_hash(client, runtime):
    who = person(runtime)
    web = WebUser(client)
    r = web.sign_in(who.email, PASSWORD)
    assert r.status_code == 303
    assert r.headers["location"] == "/"
    header = _session_cookie(r)
    lowered = header.lower()
    assert "httponly" in lowered
    assert "samesite=lax" in lowered
    assert "secure" not in lowered  # not in the test environment
    token = header.split(";", 1)[0].split("=", 1)[1]
    assert token.startswith(web_sessions.SESSION_PREFIX)
    with runtime.db.read() as session:
        row = session.scalar(select(UserToken).where(UserToken.token_hash == sha256_hex(token)))
        assert row is not None
        assert row.purpose == "session"
        assert row.user_id == who.caller.user_id
        assert row.expires_at is not None
        assert timedelta(hours=11) < row.expires_at - utcnow() <= web_sessions.SESSION_TTL
        assert session.scalar(select(UserToken).where(UserToken.token_hash == token)) is None
    page = web.get("/")
    assert page.status_code == 200
    assert who.email in page.text


def test_session_cookie_is_secure_in_production(runtime, settings):
    who = person(runtime)
    production = build_runtime(settings.model_copy(update={"environment": "production"}))
    try:
        with TestClient(create_app(production), base_url="https://testserver") as c:
            token = csrf_of(c.get("/sign-in").text)
            r = c.post(
                "/sign-in",
                data={"email": who.email, "password": PASSWORD, "csrf_token": token},
                follow_redirects=False,
            )
        assert r.status_code == 303, r.text
        assert "secure" in _session_cookie(r).lower()
        assert all("secure" in h.lower() for h in _set_cookie_headers(r))
    finally:
        production.close()


def test_failed_sign_in_says_the_same_thing_and_sets_no_session(client, runtime):
    who, passwordless = person(runtime), person(runtime)
    with runtime.db.write() as session:
        session.get(User, passwordless.caller.user_id).password_hash = None  # type: ignore[union-attr]
    for email, password in (
        (who.email, "not the password at all"),
        ("nobody@example.com", PASSWORD),
        (passwordless.email, PASSWORD),
        ("not-an-email", PASSWORD),
        (who.email, ""),
    ):
        web = WebUser(client)
        r = web.sign_in(email, password)
        assert r.status_code == 401, email
        assert "That email and password do not match an account." in r.text
        assert not any(h.startswith(f"{SESSION_COOKIE}=") for h in _set_cookie_headers(r))
        assert web.get("/", follow_redirects=False).status_code == 303
    with runtime.db.read() as session:
        assert session.scalars(select(UserToken).where(UserToken.purpose == "session")).all() == []


def test_repeated_failed_sign_ins_are_throttled_with_retry_after(client, runtime):
    who = person(runtime)
    burst = web_sessions.ATTEMPTS_PER_ACCOUNT[1]
    statuses = [
        WebUser(client).sign_in(who.email, "not the password at all").status_code for _ in range(burst)
    ]
    assert statuses == [401] * burst
    r = WebUser(client).sign_in(who.email, PASSWORD)  # even the right password waits its turn
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert "Too many sign-in attempts" in r.text
    assert not any(h.startswith(f"{SESSION_COOKIE}=") for h in _set_cookie_headers(r))


def test_sign_in_throttle_counts_per_account_and_per_client(runtime):
    from tovplus.services.auth import throttle

    throttle.use_clock(runtime, lambda: 0.0)  # time stands still: no bucket refills while argon2 runs
    first, second = person(runtime), person(runtime)
    for _ in range(web_sessions.ATTEMPTS_PER_ACCOUNT[1]):
        with pytest.raises(Unauthenticated):
            web_sessions.sign_in(runtime, first.email, "wrong password!", client="10.0.0.1")
    with pytest.raises(RateLimited):  # the client that has been failing, even with the right password
        web_sessions.sign_in(runtime, first.email.upper(), PASSWORD, client="10.0.0.1")
    assert web_sessions.sign_in(runtime, first.email, PASSWORD, client="10.0.1.1").caller.email == first.email
    assert (
        web_sessions.sign_in(runtime, second.email, PASSWORD, client="10.0.0.1").caller.email == second.email
    )
    client_burst = web_sessions.ATTEMPTS_PER_CLIENT[1]
    for n in range(client_burst):
        with pytest.raises(Unauthenticated):
            web_sessions.sign_in(runtime, f"nobody{n}@example.com", "wrong password!", client="10.0.2.2")
    with pytest.raises(RateLimited):
        web_sessions.sign_in(runtime, second.email, PASSWORD, client="10.0.2.2")


def test_sign_in_without_csrf_token_is_refused(client, runtime):
    who = person(runtime)
    web = WebUser(client)
    web.get("/sign-in")
    r = web.client.post("/sign-in", data={"email": who.email, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403
    assert not any(h.startswith(f"{SESSION_COOKIE}=") for h in _set_cookie_headers(r))


def test_pages_redirect_to_sign_in_and_back(client, runtime):
    who = person(runtime)
    occ = occasion(runtime, who)
    web = WebUser(client)
    target = f"/occasions/{occ}/integrations"
    r = web.get(target, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/sign-in?next=%2Foccasions%2F{occ}%2Fintegrations"
    page = web.get(r.headers["location"])
    r = web.client.post(
        "/sign-in",
        data={"email": who.email, "password": PASSWORD, "csrf_token": csrf_of(page.text), "next": target},
        follow_redirects=False,
    )
    assert r.headers["location"] == target


def test_a_form_posted_after_the_session_ended_comes_back_to_its_page(client, runtime):
    web = WebUser(client)
    base = "/occasions/occ_x/integrations"
    r = web.client.post(f"{base}/connections/con_y/rotate", data={"csrf_token": "x"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/sign-in?next=%2Foccasions%2Focc_x%2Fintegrations%2Fconnections%2Fcon_y"
    r = web.client.post(f"{base}/new/printing_partner", data={}, follow_redirects=False)
    assert (
        r.headers["location"] == "/sign-in?next=%2Foccasions%2Focc_x%2Fintegrations%2Fnew%2Fprinting_partner"
    )


def test_sign_in_never_redirects_off_site(client, runtime):
    who = person(runtime)
    for next_path in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"):
        web = WebUser(client)
        token = csrf_of(web.get("/sign-in").text)
        r = web.client.post(
            "/sign-in",
            data={"email": who.email, "password": PASSWORD, "csrf_token": token, "next": next_path},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/", next_path


def test_admins_land_on_the_admin_page(client, runtime):
    admin = person(runtime, "admin")
    web = WebUser(client)
    r = web.sign_in(admin.email, PASSWORD)
    assert r.headers["location"] == "/admin/integrations"


def test_sign_out_revokes_the_session(client, runtime):
    who = person(runtime)
    web = WebUser(client, who)
    token = web.client.cookies.get(SESSION_COOKIE)
    assert token
    refused = web.post("/sign-out", csrf="forged")
    assert refused.status_code == 403
    assert web.get("/").status_code == 200  # still signed in
    r = web.post("/sign-out")
    assert r.status_code == 303
    assert r.headers["location"] == "/sign-in?signed_out=1"
    assert "You are signed out." in web.get(r.headers["location"]).text
    with runtime.db.read() as session:
        row = session.scalar(select(UserToken).where(UserToken.token_hash == sha256_hex(token)))
        assert row is not None
        assert row.revoked_at is not None
    replay = TestClient(client.app, cookies={SESSION_COOKIE: token})
    assert replay.get("/", follow_redirects=False).status_code == 303
    assert web_sessions.session_caller(runtime, token) is None


def test_session_tokens_are_not_api_bearer_tokens(client, runtime):
    who = person(runtime)
    signed = web_sessions.sign_in(runtime, who.email, PASSWORD)
    r = client.get("/v1/integrations/catalog", headers={"Authorization": f"Bearer {signed.session_token}"})
    assert r.status_code == 401


def test_expired_sessions_are_refused(client, runtime):
    who = person(runtime)
    signed = web_sessions.sign_in(runtime, who.email, PASSWORD)
    assert web_sessions.session_caller(runtime, signed.session_token) == who.caller
    with runtime.db.write() as session:
        row = session.scalar(
            select(UserToken).where(UserToken.token_hash == sha256_hex(signed.session_token))
        )
        row.expires_at = utcnow() - timedelta(seconds=1)  # type: ignore[union-attr]
    assert web_sessions.session_caller(runtime, signed.session_token) is None
    with pytest.raises(Unauthenticated):
        web_sessions.sign_in(runtime, who.email, "wrong wrong wrong")


def test_users_create_with_password_can_sign_in(client, runtime, settings, database_url, tmp_path):
    env = cli_env(tmp_path / "cli-data", database_url, TOVPLUS_SECRET_KEYS=settings.secret_keys or "")
    r = subprocess.run(
        [str(TOVPLUS), "users", "create", "--email", "Pat@Example.com", "--role", "planner", *STDIN_JSON],
        env=env,
        input="a long enough password\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"user_id", "email", "role", "token"}
    assert out["email"] == "pat@example.com"
    web = WebUser(client)
    assert web.sign_in("pat@example.com", "a long enough password").status_code == 303
