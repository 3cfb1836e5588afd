"""``make run``'s OAuth2 demo: the messaging partner's client set, a guest_messaging connection
authorized at the simulator on every run (it forgets across restarts), a draft when it is down."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from tests import factories
from tests.support.sync import free_port
from tovplus.db.models import Connection, OAuthGrant
from tovplus.integrations.auth import AuthorizationStatus
from tovplus.partner_sim import BackgroundServer, MessagingState, SimState, create_app
from tovplus.runtime import Runtime
from tovplus.services import oauth
from tovplus.services.auth import UserCaller
from tovplus.services.demo_messaging import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, seed_messaging_demo


@pytest.fixture
def sim() -> Iterator[tuple[str, MessagingState]]:
    state = MessagingState()
    with BackgroundServer(create_app(SimState(demo=False), state)) as server:
        yield f"{server.url}/messaging", state


def planner_with_guests(runtime: Runtime) -> tuple[UserCaller, str, list[str]]:
    made = factories.user(runtime)
    occasion_id = factories.occasion(runtime, made.caller)
    guests = [
        factories.guest(runtime, made.caller, occasion_id, name)
        for name in ("Iryna", "Maksym", "Sofia", "Andrii")
    ]
    return made.caller, occasion_id, guests


def demo_connections(runtime: Runtime) -> list[Connection]:
    with runtime.db.read() as session:
        return list(
            session.scalars(select(Connection).where(Connection.integration_key == "guest_messaging"))
        )


def grant_of(runtime: Runtime, connection_id: str) -> OAuthGrant | None:
    with runtime.db.read() as session:
        return session.get(OAuthGrant, connection_id)


def test_the_demo_authorizes_its_connection_at_the_simulator_on_every_run(runtime, sim):
    url, state = sim
    caller, occasion_id, guests = planner_with_guests(runtime)
    line = seed_messaging_demo(runtime, caller, occasion_id, url)
    assert "authorized at the simulator" in line
    [conn] = demo_connections(runtime)
    assert conn.config == {"sender_name": "Olena & Taras", "api_base_url": url, "oauth_base_url": url}
    with runtime.db.read() as session:
        assert oauth.configured_clients(session) == {"guest_messaging": DEMO_CLIENT_ID}
        creds = oauth.client_credentials(session, runtime.keyring, "guest_messaging")
        assert creds is not None
        assert creds.client_secret == DEMO_CLIENT_SECRET
        grant = session.get(OAuthGrant, conn.id)
        assert grant is not None
        assert oauth.grant_status(grant) is AuthorizationStatus.AUTHORIZED
        token = oauth.open_access_token(grant, runtime.keyring)
    assert grant.expires_at is not None
    assert list(grant.scopes) == ["messages.send", "rsvps.read"]
    # the stored token is the one the simulator minted: it works there
    assert httpx.get(f"{url}/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # and the simulator holds answers for the first demo guests
    assert set(state.rsvps) == set(guests[:3])

    version = grant.token_version
    seed_messaging_demo(runtime, caller, occasion_id, url)  # the next `make run`
    assert [c.id for c in demo_connections(runtime)] == [conn.id]
    again = grant_of(runtime, conn.id)
    assert again is not None
    assert again.token_version > version
    assert len(state.grants) == 2


def test_the_demo_connection_is_enabled_once_authorized(runtime, sim):
    """Needs the grant's status in the connection's validation (the connect-flow branch wires it)."""
    url, _ = sim
    caller, occasion_id, _ = planner_with_guests(runtime)
    line = seed_messaging_demo(runtime, caller, occasion_id, url)
    [conn] = demo_connections(runtime)
    assert conn.state == "enabled", line


def test_with_the_simulator_down_the_connection_waits_for_connect(runtime):
    caller, occasion_id, _ = planner_with_guests(runtime)
    url = f"http://127.0.0.1:{free_port()}/messaging"  # nothing listens there
    line = seed_messaging_demo(runtime, caller, occasion_id, url)
    assert "did not answer" in line
    [conn] = demo_connections(runtime)
    assert conn.state == "draft"
    assert grant_of(runtime, conn.id) is None
    with runtime.db.read() as session:
        assert oauth.configured_clients(session) == {"guest_messaging": DEMO_CLIENT_ID}
