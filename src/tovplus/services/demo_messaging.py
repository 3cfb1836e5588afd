"""Issue 15's part of ``make run``: a ``guest_messaging`` connection already authorized at the
messaging partner simulator (``tovplus partner-sim``, under ``/messaging``).

Every run sets the adapter's OAuth client (the simulator's published demo client), makes sure the
demo connection exists, and, when the simulator answers, mints a grant there
(``POST /messaging/_control/grants``: what pressing Allow would give) and stores it like a code
exchange would, then enables the connection and gives the simulator RSVPs for some demo guests.
The simulator keeps nothing across restarts, so every run mints again. When the simulator is down
the connection stays a draft, waiting for Connect.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from tovplus.db.models import Connection, Guest
from tovplus.db.states import ConnectionState
from tovplus.errors import TovPlusError
from tovplus.runtime import Runtime
from tovplus.runtime.partner_http import partner_http_client
from tovplus.services import oauth
from tovplus.services.auth import UserCaller
from tovplus.services.connections import (
    ConnectionCreate,
    ConnectionPatch,
    create_connection,
    update_connection,
)

INTEGRATION_KEY = "guest_messaging"
MESSAGING_URL = "http://127.0.0.1:8100/messaging"
#: The simulator's published demo client (``partner_sim/messaging_state.py``; demo data only).
DEMO_CLIENT_ID = "tovplus-demo"
DEMO_CLIENT_SECRET = "tovplus-demo-secret"  # noqa: S105
SENDER_NAME = "Olena & Taras"
#: The answers the simulator holds for the first demo guests, in guest order.
DEMO_RSVPS = ("yes", "yes", "maybe")


def seed_messaging_demo(
    rt: Runtime, caller: UserCaller, occasion_id: str, messaging_url: str = MESSAGING_URL
) -> str:
    """Set the OAuth client, make or find the demo connection, authorize it when the simulator at
    ``messaging_url`` answers; returns one line for the demo's output."""
    with rt.db.write() as session:
        oauth.set_client(
            session, rt.keyring, INTEGRATION_KEY, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, actor="system"
        )
    connection_id, state = _connection(rt, caller, occasion_id, messaging_url)
    minted = _mint(rt, messaging_url)
    if minted is None:
        return (
            f"Guest messaging: the simulator at {messaging_url} did not answer; the connection waits "
            "for Connect on its page."
        )
    with rt.db.write() as session:
        oauth.store_grant(session, rt.keyring, connection_id, minted, actor="system")
    _seed_rsvps(rt, occasion_id, messaging_url)
    if state == ConnectionState.DRAFT.value:
        try:
            update_connection(
                rt, caller, occasion_id, connection_id, ConnectionPatch(state=ConnectionState.ENABLED.value)
            )
        except TovPlusError as exc:
            return f"Guest messaging: authorized at the simulator, but left a draft ({exc.message})."
    return f"Guest messaging: authorized at the simulator ({messaging_url}); it syncs RSVPs from there."


def _connection(rt: Runtime, caller: UserCaller, occasion_id: str, url: str) -> tuple[str, str]:
    """The demo connection's id and state (created as a draft the first time)."""
    with rt.db.read() as session:
        found = session.execute(
            select(Connection.id, Connection.state)
            .where(
                Connection.occasion_id == occasion_id,
                Connection.integration_key == INTEGRATION_KEY,
                Connection.state != ConnectionState.REVOKED,
            )
            .order_by(Connection.created_at)
        ).first()
    if found is not None:
        return str(found[0]), str(found[1])
    config = {"sender_name": SENDER_NAME, "api_base_url": url, "oauth_base_url": url}
    made = create_connection(
        rt,
        caller,
        occasion_id,
        ConnectionCreate(INTEGRATION_KEY, config=config, action_keys=("occasion.read", "guests.read")),
    )
    return made.connection.id, made.connection.state


def _control(rt: Runtime, url: str, path: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """POST to the simulator's control API; ``None`` when it does not answer as expected."""
    try:
        response = partner_http_client(rt.settings).post(f"{url}/_control{path}", json=dict(body))
        answer = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, TovPlusError):  # down, or loopback refused by the settings
        return None
    return answer if isinstance(answer, dict) else None


def _mint(rt: Runtime, url: str) -> oauth.TokenSet | None:
    answer = _control(rt, url, "/grants", {"client_id": DEMO_CLIENT_ID})
    if answer is None:
        return None
    access, refresh, expires_in = (
        answer.get("access_token"),
        answer.get("refresh_token"),
        answer.get("expires_in"),
    )
    if not isinstance(access, str) or not isinstance(refresh, str) or not isinstance(expires_in, int):
        return None
    scope = answer.get("scope")
    return oauth.TokenSet(
        access,
        refresh,
        datetime.now(UTC) + timedelta(seconds=expires_in),
        tuple(scope.split()) if isinstance(scope, str) else (),
    )


def _seed_rsvps(rt: Runtime, occasion_id: str, url: str) -> None:
    """Answers for the first demo guests, so the first sync brings RSVPs in."""
    with rt.db.read() as session:
        ids = session.scalars(
            select(Guest.id).where(Guest.occasion_id == occasion_id).order_by(Guest.created_at, Guest.id)
        ).all()
    rsvps = [{"guest_id": gid, "response": answer} for gid, answer in zip(ids, DEMO_RSVPS, strict=False)]
    if rsvps:
        _control(rt, url, "/rsvps", {"rsvps": rsvps})
