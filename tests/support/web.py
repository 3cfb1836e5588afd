"""Helpers for the page tests: users with passwords, occasions, and a signed-in TestClient."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from tests import factories
from tests.factories import PASSWORD, User
from tovplus.db.models import Connection
from tovplus.runtime import Runtime

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


Person = User
"""A user with the page password (``tests.factories.User``)."""


def person(rt: Runtime, role: str = "planner", *, email: str | None = None) -> Person:
    """A new user with ``PASSWORD`` and no bearer token (``tests.factories.user``)."""
    return factories.user(rt, role, email=email, password=PASSWORD, token=False)


def occasion(rt: Runtime, planner: Person, name: str = "Wedding", *, events: int = 0) -> str:
    """An occasion the person plans, with ``events`` events (``tests.factories.occasion``)."""
    return factories.occasion(rt, planner, name, events=events)


def set_health(rt: Runtime, connection_id: str, health: str, reasons: list[str]) -> None:
    """What a failed sync leaves behind, written directly (the worker is not under test here)."""
    with rt.db.write() as session:
        session.execute(
            update(Connection)
            .where(Connection.id == connection_id)
            .values(
                health=health,
                health_reasons=reasons,
                sync_health=health,
                sync_health_reasons=reasons,
                last_sync_status="failed",
            )
        )


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match is not None, "the page has no CSRF token"
    return match.group(1)


class WebUser:
    """A TestClient with its own cookie jar, signed in as one person."""

    def __init__(self, client: TestClient, who: Person | None = None) -> None:
        self.client = TestClient(client.app, raise_server_exceptions=False)
        self.who = who
        if who is not None:
            assert who.password is not None, "signing in needs a user made with a password"
            r = self.sign_in(who.email, who.password)
            assert r.status_code == 303, r.text

    def sign_in(self, email: str, password: str) -> Any:
        token = csrf_of(self.client.get("/sign-in").text)
        return self.client.post(
            "/sign-in",
            data={"email": email, "password": password, "csrf_token": token, "next": "/"},
            follow_redirects=False,
        )

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def csrf(self, path: str = "/") -> str:
        return csrf_of(self.client.get(path).text)

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: str | None = None, **kw: Any
    ) -> Any:
        body = dict(data or {})
        body.setdefault("csrf_token", csrf if csrf is not None else self.csrf())
        kw.setdefault("follow_redirects", False)
        return self.client.post(path, data=body, **kw)

    def follow(self, response: Any) -> Any:
        assert response.status_code == 303, response.text
        return self.client.get(response.headers["location"])


def connection_ids(rt: Runtime, occasion_id: str) -> list[str]:
    from sqlalchemy import select

    with rt.db.read() as session:
        return list(
            session.scalars(
                select(Connection.id).where(Connection.occasion_id == occasion_id).order_by(Connection.id)
            )
        )


PRINTING_FORM = {
    "config.account_id": "acct-123",
    "config.api_base_url": "https://printer.example.com/api",
    "secrets.api_key": "pk_live_ABCDEFGHIJKL7890",
    "scope.type": "occasion",
    "action_keys.present": "1",
    "action_keys": ["occasion.read", "events.read", "guests.read"],
    "intent": "enable",
}
