"""State misuse at the callback: missing, replayed, expired, another user's, another connection's,
no browser session: each 400 ``invalid_state`` (or, for a code that is not the state's, refused by
the partner) and nothing changes: no grant, no activity, the state as it was."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests import factories
from tests.conftest import assert_error
from tests.oauth.fake_partner import FakePartner
from tests.oauth.flow_support import (
    authorize,
    demo_connection,
    partner_answer,
    planner,
    query_of,
    set_demo_client,
)
from tests.oauth.test_flow_connect import setup
from tests.support.web import WebUser
from tovplus.db.models import Activity, Connection, OAuthGrant, OAuthState
from tovplus.db.types import utcnow
from tovplus.runtime import Runtime
from tovplus.services import occasions
from tovplus.services.oauth.states import STATE_TTL, state_hash

CALLBACK = "/v1/integrations/oauth/callback"


def snapshot(flow_runtime: Runtime) -> dict[str, Any]:
    """Everything a callback could change."""
    with flow_runtime.db.read() as session:
        return {
            "grants": [
                (g.connection_id, g.status, g.token_version) for g in session.scalars(select(OAuthGrant))
            ],
            "states": sorted((s.state_hash, s.used_at) for s in session.scalars(select(OAuthState))),
            "activity": sorted(a.id for a in session.scalars(select(Activity))),
            "connections": sorted((c.id, c.version, c.health) for c in session.scalars(select(Connection))),
        }


def test_no_state_or_an_unknown_one_is_400(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, _occasion_id, _connection_id = setup(flow_client, flow_runtime, fake_partner)
    before = snapshot(flow_runtime)
    for query in (
        {"code": "c"},
        {"code": "c", "state": ""},
        {"code": "c", "state": "nope"},
        {"state": "x" * 5000},
    ):
        r = who.browser.get(f"{CALLBACK}?{urlencode(query)}", follow_redirects=False)
        assert_error(r, 400, "invalid_state")
    assert snapshot(flow_runtime) == before


def test_a_replayed_callback_is_400_and_changes_nothing(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    url = authorize(flow_client, who, occasion_id, connection_id).json()["authorize_url"]
    back = partner_answer(url)
    assert who.browser.get(back, follow_redirects=False).status_code == 303
    before = snapshot(flow_runtime)
    calls = len(fake_partner.state.token_requests)
    assert_error(who.browser.get(back, follow_redirects=False), 400, "invalid_state")
    assert snapshot(flow_runtime) == before
    assert len(fake_partner.state.token_requests) == calls  # refused before the partner is asked


def test_an_expired_state_is_400(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    url = authorize(flow_client, who, occasion_id, connection_id).json()["authorize_url"]
    with flow_runtime.db.write() as session:
        session.execute(
            update(OAuthState)
            .where(OAuthState.state_hash == state_hash(query_of(url)["state"]))
            .values(expires_at=utcnow() - STATE_TTL / 600)
        )
    before = snapshot(flow_runtime)
    assert_error(who.browser.get(partner_answer(url), follow_redirects=False), 400, "invalid_state")
    assert snapshot(flow_runtime) == before
    fresh = authorize(flow_client, who, occasion_id, connection_id).json()["authorize_url"]
    with flow_runtime.db.read() as session:  # the next Connect clears the connection's expired states
        hashes = list(session.scalars(select(OAuthState.state_hash)))
    assert hashes == [state_hash(query_of(fresh)["state"])]


def test_another_users_browser_or_none_is_400_and_the_state_stays_good(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    other = planner(flow_client, flow_runtime)
    with flow_runtime.db.write() as session:  # a co-planner: they may manage it, but did not ask
        occasions.add_planner(session, occasion_id, other.user.id)
    url = authorize(flow_client, who, occasion_id, connection_id).json()["authorize_url"]
    back = partner_answer(url)
    before = snapshot(flow_runtime)
    assert_error(other.browser.get(back, follow_redirects=False), 400, "invalid_state")
    anonymous = WebUser(flow_client)
    assert_error(anonymous.get(back, follow_redirects=False), 400, "invalid_state")
    bearer_only = flow_client.get(
        back, headers=who.headers, follow_redirects=False
    )  # an API token is no session
    assert_error(bearer_only, 400, "invalid_state")
    assert snapshot(flow_runtime) == before
    assert who.browser.get(back, follow_redirects=False).status_code == 303  # the right browser still can


def test_a_state_whose_connection_was_revoked_is_400(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    url = authorize(flow_client, who, occasion_id, connection_id).json()["authorize_url"]
    r = flow_client.patch(
        f"/v1/occasions/{occasion_id}/integrations/connections/{connection_id}",
        json={"state": "revoked"},
        headers=who.headers,
    )
    assert r.status_code == 200, r.text
    before = snapshot(flow_runtime)
    assert_error(who.browser.get(partner_answer(url), follow_redirects=False), 400, "invalid_state")
    assert snapshot(flow_runtime) == before


def test_a_planner_who_lost_the_occasion_cannot_finish(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    """The state's user must still be allowed to manage the connection when the partner answers."""
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    url = authorize(flow_client, who, occasion_id, connection_id).json()["authorize_url"]
    from tovplus.db.models import OccasionPlanner

    with flow_runtime.db.write() as session:
        session.execute(OccasionPlanner.__table__.delete().where(OccasionPlanner.occasion_id == occasion_id))
    before = snapshot(flow_runtime)
    assert_error(who.browser.get(partner_answer(url), follow_redirects=False), 400, "invalid_state")
    assert snapshot(flow_runtime) == before


def test_another_connections_code_with_this_state_grants_nothing(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    """The state names the connection; a code issued for another attempt (another PKCE challenge)
    is refused by the partner, so neither connection gets a grant."""
    who, occasion_id, first = setup(flow_client, flow_runtime, fake_partner)
    second = demo_connection(flow_client, who, occasion_id, fake_partner).json()["connection"]["id"]
    url_a = authorize(flow_client, who, occasion_id, first).json()["authorize_url"]
    url_b = authorize(flow_client, who, occasion_id, second).json()["authorize_url"]
    code_b = query_of(partner_answer(url_b))["code"]
    mixed = f"{CALLBACK}?{urlencode({'code': code_b, 'state': query_of(url_a)['state']})}"
    r = who.browser.get(mixed, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"].endswith("?oauth=failed")
    with flow_runtime.db.read() as session:
        assert list(session.scalars(select(OAuthGrant))) == []
        kinds = list(session.scalars(select(Activity.kind).where(Activity.connection_id == first)))
    assert "connection.authorization_failed" in kinds
    assert "connection.authorized" not in kinds


def test_access_denied_is_recorded_and_changes_nothing_else(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    url = authorize(flow_client, who, occasion_id, connection_id).json()["authorize_url"]
    back = partner_answer(url, allow=False)
    assert query_of(back)["error"] == "access_denied"
    r = who.browser.get(back, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert (
        r.headers["location"]
        == f"/occasions/{occasion_id}/integrations/connections/{connection_id}?oauth=denied"
    )
    view = flow_client.get(
        f"/v1/occasions/{occasion_id}/integrations/connections/{connection_id}", headers=who.headers
    ).json()["connection"]
    assert view["state"] == "draft"
    assert view["authorization"]["status"] == "pending"
    assert "authorization" in [e["field"] for e in view["validation"]["errors"]]
    with flow_runtime.db.read() as session:
        assert list(session.scalars(select(OAuthGrant))) == []
        state = session.get(OAuthState, state_hash(query_of(url)["state"]))
        assert state is not None
        assert state.used_at is not None
        kinds = list(session.scalars(select(Activity.kind).where(Activity.connection_id == connection_id)))
    assert "connection.authorization_denied" in kinds
    assert fake_partner.state.token_requests == []
    assert_error(who.browser.get(back, follow_redirects=False), 400, "invalid_state")  # used


def test_a_failing_token_endpoint_leaves_no_grant(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    for mode in ("error500", "garbage", "invalid_grant"):
        fake_partner.state.token_mode = mode
        url = authorize(flow_client, who, occasion_id, connection_id).json()["authorize_url"]
        r = who.browser.get(partner_answer(url), follow_redirects=False)
        assert r.status_code == 303, r.text
        assert r.headers["location"].endswith("?oauth=failed")
    with flow_runtime.db.read() as session:
        assert list(session.scalars(select(OAuthGrant))) == []
        summaries = list(
            session.scalars(
                select(Activity.summary).where(Activity.kind == "connection.authorization_failed")
            )
        )
    assert len(summaries) == 3
    assert any("invalid_grant" in s for s in summaries)


def test_a_grant_for_one_occasion_never_comes_from_another_planners_state(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    """Planner B cannot even ask for A's connection, and B's own state cannot land on A's."""
    _who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    other = planner(flow_client, flow_runtime)
    assert_error(authorize(flow_client, other, occasion_id, connection_id), 404, "not_found")
    occasion_b = factories.occasion(flow_runtime, other.user)
    set_demo_client(flow_runtime)
    mine = demo_connection(flow_client, other, occasion_b, fake_partner).json()["connection"]["id"]
    url = authorize(flow_client, other, occasion_b, mine).json()["authorize_url"]
    assert other.browser.get(partner_answer(url), follow_redirects=False).status_code == 303
    with flow_runtime.db.read() as session:
        assert [g.connection_id for g in session.scalars(select(OAuthGrant))] == [mine]
