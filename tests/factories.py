"""The one way the tests make users, occasions, events, guests and connections.

Everything goes through the services, one write transaction each, as the app would do it. The
helpers the folders already had (``conftest.Api.user``, ``tests.support.sync.planner`` and
``make_connection``, ``tests.support.web.person`` and ``occasion``) are thin calls into these.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from tovplus.db.states import ConnectionState
from tovplus.runtime import Runtime
from tovplus.services import occasions
from tovplus.services.auth import UserCaller, create_user, hash_password, issue_user_token
from tovplus.services.connections import ConnectionCreate, ConnectionResult, create_connection

PASSWORD = "correct horse battery staple"
"""The password :func:`user` gives when a test asks for one (``password=PASSWORD``)."""

WEDDING_DAY = date(2027, 6, 12)

PRINTING_CONFIG: Mapping[str, Any] = {
    "account_id": "acct-123",
    "api_base_url": "https://printer.example.com/api",
}
PRINTING_SECRETS: Mapping[str, Any] = {"api_key": "pk_live_ABCDEFGHIJKLMNOP"}


@dataclass(frozen=True)
class User:
    """A user made for a test: the caller the services take, and its bearer token and password
    when it was given them."""

    caller: UserCaller
    token: str | None = None
    password: str | None = None

    @property
    def email(self) -> str:
        return self.caller.email

    @property
    def id(self) -> str:
        return self.caller.user_id


Owner = User | UserCaller


def _caller(owner: Owner) -> UserCaller:
    return owner.caller if isinstance(owner, User) else owner


def unique_email(role: str) -> str:
    return f"{role}-{uuid.uuid4().hex[:8]}@example.com"


def user(
    rt: Runtime,
    role: str = "planner",
    *,
    email: str | None = None,
    password: str | None = None,
    token: bool = True,
) -> User:
    """A ``planner`` or ``admin``, with an API bearer token (unless ``token=False``) and, when
    ``password`` is given, that password stored as the pages' argon2id hash."""
    with rt.db.write() as session:
        row = create_user(
            session,
            email or unique_email(role),
            role,
            password_hash=hash_password(password) if password is not None else None,
        )
        issued = issue_user_token(session, row) if token else None
        return User(UserCaller(row.id, row.email, row.role), issued, password)


def occasion(
    rt: Runtime, owner: Owner, name: str = "Wedding", *, starts_on: date = WEDDING_DAY, events: int = 0
) -> str:
    """An occasion planned by ``owner``, with ``events`` events named "Event 1", "Event 2", …"""
    caller = _caller(owner)
    with rt.db.write() as session:
        occ = occasions.create_occasion(session, caller, name, starts_on)
        session.flush()
        for i in range(events):
            occasions.create_event(session, caller, occ.id, f"Event {i + 1}", None)
        return occ.id


def event(rt: Runtime, owner: Owner, occasion_id: str, name: str = "Dinner") -> str:
    """An event (no start time) of the occasion."""
    with rt.db.write() as session:
        return occasions.create_event(session, _caller(owner), occasion_id, name, None).id


def guest(rt: Runtime, owner: Owner, occasion_id: str, name: str = "Ola", email: str | None = None) -> str:
    """A guest of the occasion."""
    with rt.db.write() as session:
        return occasions.create_guest(session, _caller(owner), occasion_id, name, email).id


def connection(
    rt: Runtime,
    owner: Owner,
    occasion_id: str,
    *,
    integration_key: str = "printing_partner",
    config: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    state: str = ConnectionState.ENABLED.value,
    interval: int | None = None,
) -> ConnectionResult:
    """A connection of the occasion made by ``create_connection`` (by default an enabled
    printing_partner one with the contract's example settings); the result carries the issued key."""
    return create_connection(
        rt,
        _caller(owner),
        occasion_id,
        ConnectionCreate(
            integration_key,
            config=PRINTING_CONFIG if config is None else config,
            secrets=PRINTING_SECRETS if secrets is None else secrets,
            state=state,
            sync_interval_seconds=interval,
        ),
    )
