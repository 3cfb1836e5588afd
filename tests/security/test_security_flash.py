"""Issue 13, finding 9: the "shown once" key could be shown again by replaying the flash cookie.

Every flash message now carries a one-time ticket whose row the page showing it deletes, so
the same cookie sent again (by the same browser, another one, or to another process) shows
nothing, and of two requests racing with it exactly one shows it.
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from tests.support.web import PRINTING_FORM, WebUser, connection_ids, occasion, person
from tovplus.app import create_app
from tovplus.db.models import UserToken
from tovplus.db.types import utcnow
from tovplus.runtime import build_runtime
from tovplus.services.auth import ONE_TIME_PURPOSE
from tovplus.web.security import FLASH_COOKIE, SESSION_COOKIE, open_flash

ISSUED_RE = re.compile(r'id="issued-key"[^>]*value="(tov_[^"]+)"')
SHOWN_ONCE = "You will not see this key again."


@pytest.fixture
def planner(runtime):  # type: ignore[no-untyped-def]
    return person(runtime, "planner")


@pytest.fixture
def occ(runtime, planner):  # type: ignore[no-untyped-def]
    return occasion(runtime, planner, "Replay")


@pytest.fixture
def web(client, planner):  # type: ignore[no-untyped-def]
    return WebUser(client, planner)


def _base(occ: str) -> str:
    return f"/occasions/{occ}/integrations"


def _created(web: WebUser, occ: str) -> tuple[str, str, str]:
    """Create through the form: the connection page's path, the flash cookie and the key it showed."""
    url = f"{_base(occ)}/new/printing_partner"
    r = web.post(url, PRINTING_FORM, csrf=web.csrf(url))
    assert r.status_code == 303, r.text
    flash = r.cookies.get(FLASH_COOKIE) or web.client.cookies.get(FLASH_COOKIE)
    assert flash
    page = web.follow(r)
    match = ISSUED_RE.search(page.text)
    assert match is not None, "the key is shown on the first visit"
    return r.headers["location"], flash, match.group(1)


def _flash_rows(runtime) -> int:  # type: ignore[no-untyped-def]
    with runtime.db.read() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(UserToken).where(UserToken.purpose == ONE_TIME_PURPOSE)
            )
            or 0
        )


def test_a_replayed_flash_cookie_does_not_show_the_key_again(web, runtime, occ):  # type: ignore[no-untyped-def]
    path, flash, issued = _created(web, occ)
    web.client.cookies.set(FLASH_COOKIE, flash)
    again = web.get(path)
    assert again.status_code == 200
    assert issued not in again.text
    assert SHOWN_ONCE not in again.text
    assert ISSUED_RE.search(again.text) is None


def test_a_rotated_key_is_shown_once_too(web, runtime, occ):  # type: ignore[no-untyped-def]
    path, _, first = _created(web, occ)
    r = web.post(f"{path}/rotate", {}, csrf=web.csrf(path))
    assert r.status_code == 303
    flash = r.cookies.get(FLASH_COOKIE) or web.client.cookies.get(FLASH_COOKIE)
    shown = ISSUED_RE.search(web.follow(r).text)
    assert shown is not None
    assert shown.group(1) != first
    web.client.cookies.set(FLASH_COOKIE, flash)
    assert shown.group(1) not in web.get(path).text


def test_a_replay_to_another_process_shows_nothing(web, runtime, settings, occ):  # type: ignore[no-untyped-def]
    path, flash, issued = _created(web, occ)
    other = build_runtime(settings)  # another serving process on the same database
    try:
        with TestClient(create_app(other)) as c:
            c.cookies.set(SESSION_COOKIE, web.client.cookies[SESSION_COOKIE])
            c.cookies.set(FLASH_COOKIE, flash)
            page = c.get(path)
        assert page.status_code == 200
        assert issued not in page.text
    finally:
        other.close()


def test_of_requests_racing_with_one_cookie_exactly_one_shows_the_key(
    client, runtime, settings, occ, planner
):  # type: ignore[no-untyped-def]
    url = f"{_base(occ)}/new/printing_partner"
    web = WebUser(client, planner)
    r = web.post(url, PRINTING_FORM, csrf=web.csrf(url))
    assert r.status_code == 303
    flash = r.cookies.get(FLASH_COOKIE) or web.client.cookies.get(FLASH_COOKIE)
    path = r.headers["location"]
    other = build_runtime(settings)
    cookies = {SESSION_COOKIE: web.client.cookies[SESSION_COOKIE], FLASH_COOKIE: flash}
    pages: list[str] = []
    start = threading.Barrier(6)

    def fetch(app: Any) -> None:
        c = TestClient(app, cookies=cookies)
        start.wait()
        pages.append(c.get(path).text)

    try:
        apps = [client.app, create_app(other)]
        threads = [threading.Thread(target=fetch, args=(apps[i % 2],)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        other.close()
    assert len(pages) == 6
    assert sum(1 for p in pages if ISSUED_RE.search(p)) == 1


def test_the_ticket_is_a_hashed_row_gone_once_used_and_worthless_once_expired(web, runtime, occ):  # type: ignore[no-untyped-def]
    url = f"{_base(occ)}/new/printing_partner"
    r = web.post(url, PRINTING_FORM, csrf=web.csrf(url))
    assert r.status_code == 303
    flash = r.cookies.get(FLASH_COOKIE) or web.client.cookies.get(FLASH_COOKIE)
    with runtime.db.read() as session:
        (row,) = session.scalars(select(UserToken).where(UserToken.purpose == ONE_TIME_PURPOSE)).all()
        assert row.user_id == web.who.caller.user_id
        assert row.expires_at is not None
        assert row.expires_at - utcnow() <= timedelta(minutes=5)
        assert row.token_hash not in flash
    with runtime.db.write() as session:  # the five minutes pass before the page is loaded
        session.execute(update(UserToken).where(UserToken.id == row.id).values(expires_at=utcnow()))
    page = web.follow(r)
    assert ISSUED_RE.search(page.text) is None
    # the next flash sweeps the expired ticket, and the page that shows it uses its own up
    path = r.headers["location"]
    page = web.follow(web.post(f"{path}/rotate", {}, csrf=web.csrf(path)))
    assert ISSUED_RE.search(page.text) is not None
    assert _flash_rows(runtime) == 0
    assert connection_ids(runtime, occ)


def test_a_ticket_is_no_bearer_token(web, occ, client):  # type: ignore[no-untyped-def]
    url = f"{_base(occ)}/new/printing_partner"
    r = web.post(url, PRINTING_FORM, csrf=web.csrf(url))
    sealed = r.cookies.get(FLASH_COOKIE) or web.client.cookies.get(FLASH_COOKIE)
    opened = open_flash(web.client.cookies[SESSION_COOKIE], sealed)
    assert opened is not None
    assert opened.ticket
    for token in (opened.ticket, f"tovu_{opened.ticket}"):
        answer = client.get(f"/v1/occasions/{occ}", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401
    assert ISSUED_RE.search(web.follow(r).text) is not None  # trying it used nothing up
