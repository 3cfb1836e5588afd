"""The connect flow through the API: authorize, the partner's Allow, the callback, and reconnecting."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from tests import factories
from tests.conftest import assert_error
from tests.oauth.fake_partner import CLIENT_ID, FakePartner
from tests.oauth.flow_support import (
    SCOPES,
    Planner,
    authorize,
    connection_path,
    demo_connection,
    partner_answer,
    planner,
    query_of,
    set_demo_client,
)
from tovplus.db.models import Activity, Connection, OAuthGrant, OAuthState, SyncRun
from tovplus.integrations.auth import AuthorizationStatus
from tovplus.runtime import Runtime
from tovplus.services.oauth.states import state_hash


def setup(
    flow_client: TestClient,
    flow_runtime: Runtime,
    fake_partner: FakePartner,
    *,
    configured: bool = True,
    **body: Any,
) -> tuple[Planner, str, str]:
    who = planner(flow_client, flow_runtime)
    occasion_id = factories.occasion(flow_runtime, who.user)
    if configured:
        set_demo_client(flow_runtime)
    r = demo_connection(flow_client, who, occasion_id, fake_partner, **body)
    assert r.status_code == 201, r.text
    return who, occasion_id, r.json()["connection"]["id"]


def connect(flow_client: TestClient, who: Planner, occasion_id: str, connection_id: str, **body: Any) -> Any:
    """Authorize, Allow at the partner, and come back in the planner's browser."""
    r = authorize(flow_client, who, occasion_id, connection_id, **body)
    assert r.status_code == 200, r.text
    return who.browser.get(partner_answer(r.json()["authorize_url"]), follow_redirects=False)


def read(flow_client: TestClient, who: Planner, occasion_id: str, connection_id: str) -> dict[str, Any]:
    r = flow_client.get(connection_path(occasion_id, connection_id), headers=who.headers)
    assert r.status_code == 200, r.text
    return dict(r.json()["connection"])


def test_a_new_oauth2_connection_is_a_draft_that_needs_access(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    view = read(flow_client, who, occasion_id, connection_id)
    assert view["state"] == "draft"
    assert view["authorization"] == {"status": "pending", "scopes": list(SCOPES), "expires_at": None}
    assert {"field": "authorization", "code": "required"} in [
        {"field": e["field"], "code": e["code"]} for e in view["validation"]["errors"]
    ]
    r = flow_client.patch(
        connection_path(occasion_id, connection_id), json={"state": "enabled"}, headers=who.headers
    )
    assert "authorization" in [f["field"] for f in assert_error(r, 409, "validation_failed")["fields"]]


def test_an_api_key_connection_has_no_authorization(api: Any) -> None:
    token = api.user()
    occasion_id = api.occasion(token)
    r = api.connect(token, occasion_id)
    assert r.status_code == 201, r.text
    assert r.json()["connection"]["authorization"] is None


def test_creating_an_oauth2_connection_with_secrets_is_422_on_secrets(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who = planner(flow_client, flow_runtime)
    occasion_id = factories.occasion(flow_runtime, who.user)
    r = demo_connection(
        flow_client, who, occasion_id, fake_partner, secrets={"api_key": "pk_live_ABCDEFGHIJKLMNOP"}
    )
    error = assert_error(r, 422, "invalid_input")
    assert [f["field"] for f in error["fields"]] == ["secrets"]
    assert "pk_live" not in r.text
    with flow_runtime.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Connection)) == 0


def test_authorize_gives_the_partners_url_with_a_hashed_single_use_state_and_pkce(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    r = authorize(flow_client, who, occasion_id, connection_id)
    assert r.status_code == 200, r.text
    url = r.json()["authorize_url"]
    assert url.startswith(fake_partner.url + "/oauth/authorize?")
    q = query_of(url)
    assert q["response_type"] == "code"
    assert q["client_id"] == CLIENT_ID
    assert q["redirect_uri"] == "http://127.0.0.1:8000/v1/integrations/oauth/callback"
    assert q["scope"] == " ".join(SCOPES)
    assert q["code_challenge_method"] == "S256"
    assert len(q["code_challenge"]) == 43
    with flow_runtime.db.read() as session:
        row = session.get(OAuthState, state_hash(q["state"]))
        assert row is not None
        assert row.connection_id == connection_id
        assert row.user_id == who.user.id
        assert row.used_at is None
        assert 599 <= (row.expires_at - row.created_at).total_seconds() <= 601
        assert row.verifier_ciphertext is not None
        stored = [v for v in vars(row).values() if isinstance(v, str | bytes)]
    assert not any(q["state"] in (v if isinstance(v, str) else v.decode("latin-1")) for v in stored)
    second = authorize(flow_client, who, occasion_id, connection_id).json()["authorize_url"]
    assert query_of(second)["state"] != q["state"]


def test_allow_stores_the_grant_sealed_and_the_draft_can_be_enabled(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    r = connect(flow_client, who, occasion_id, connection_id)
    assert r.status_code == 303, r.text
    assert (
        r.headers["location"]
        == f"/occasions/{occasion_id}/integrations/connections/{connection_id}?oauth=authorized"
    )
    token_call = fake_partner.state.token_requests[-1]
    assert token_call["grant_type"] == "authorization_code"
    assert token_call["code_verifier"]  # the fake partner checked it against the challenge
    view = read(flow_client, who, occasion_id, connection_id)
    assert view["authorization"]["status"] == "authorized"
    assert view["authorization"]["scopes"] == list(SCOPES)
    assert view["authorization"]["expires_at"] is not None
    assert "authorization" not in [e["field"] for e in view["validation"]["errors"]]
    with flow_runtime.db.read() as session:
        grant = session.get(OAuthGrant, connection_id)
        assert grant is not None
        assert grant.status == AuthorizationStatus.AUTHORIZED
        assert grant.authorized_by == who.user.caller.subject_id
        sealed = (grant.access_ciphertext or b"") + (grant.refresh_ciphertext or b"")
        kinds = list(session.scalars(select(Activity.kind).where(Activity.connection_id == connection_id)))
    assert fake_partner.state.access_tokens[-1].encode() not in sealed
    assert fake_partner.state.refresh_tokens[-1].encode() not in sealed
    assert "connection.authorized" in kinds
    r = flow_client.patch(
        connection_path(occasion_id, connection_id), json={"state": "enabled"}, headers=who.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["connection"]["health"] == "unknown"


def test_return_to_is_where_the_browser_comes_back_to(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    r = connect(
        flow_client, who, occasion_id, connection_id, return_to=f"/occasions/{occasion_id}/integrations?x=1"
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/occasions/{occasion_id}/integrations?x=1&oauth=authorized"


def test_a_bad_return_to_is_422_and_stores_no_state(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    for bad in ("//evil.example/x", "https://evil.example/", "relative/path", "/a\\b", "/a b", 5, ""):
        r = authorize(flow_client, who, occasion_id, connection_id, return_to=bad)
        error = assert_error(r, 422)
        assert "return_to" in [f["field"].split(".")[-1] for f in error["fields"]] or bad == 5, (bad, error)
    with flow_runtime.db.read() as session:
        assert session.scalar(select(func.count()).select_from(OAuthState)) == 0


def test_no_configured_client_is_409_with_a_clear_field_error(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner, configured=False)
    error = assert_error(
        authorize(flow_client, who, occasion_id, connection_id), 409, "client_not_configured"
    )
    assert [(f["field"], f["code"]) for f in error["fields"]] == [("authorization", "client_not_configured")]
    assert "tovplus oauth set-client demo_messenger" in error["message"]
    with flow_runtime.db.read() as session:
        assert session.scalar(select(func.count()).select_from(OAuthState)) == 0


def test_an_api_key_or_revoked_connection_is_409(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner, api: Any
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner)
    printing = flow_client.post(
        f"/v1/occasions/{occasion_id}/integrations/connections",
        json={"integration_key": "printing_partner", "config": dict(factories.PRINTING_CONFIG)},
        headers=who.headers,
    ).json()["connection"]["id"]
    assert_error(authorize(flow_client, who, occasion_id, printing), 409, "not_oauth2")
    r = flow_client.patch(
        connection_path(occasion_id, connection_id), json={"state": "revoked"}, headers=who.headers
    )
    assert r.status_code == 200, r.text
    assert_error(authorize(flow_client, who, occasion_id, connection_id), 409, "connection_revoked")


def test_reconnect_keeps_the_connection_and_resumes_its_syncs(
    flow_client: TestClient, flow_runtime: Runtime, fake_partner: FakePartner
) -> None:
    who, occasion_id, connection_id = setup(flow_client, flow_runtime, fake_partner, state="draft")
    assert connect(flow_client, who, occasion_id, connection_id).status_code == 303
    r = flow_client.patch(
        connection_path(occasion_id, connection_id), json={"state": "enabled"}, headers=who.headers
    )
    assert r.status_code == 200, r.text
    before = read(flow_client, who, occasion_id, connection_id)
    reason = "Demo Messenger refused the grant: reconnect."
    with flow_runtime.db.write() as session:  # what a refused refresh leaves (the refresh work writes it)
        session.execute(update(SyncRun).where(SyncRun.connection_id == connection_id).values(state="failed"))
        session.execute(
            update(OAuthGrant)
            .where(OAuthGrant.connection_id == connection_id)
            .values(status=AuthorizationStatus.RECONNECT_REQUIRED)
        )
        session.execute(
            update(Connection)
            .where(Connection.id == connection_id)
            .values(
                health="failing",
                health_reasons=[reason],
                sync_health="failing",
                sync_health_reasons=[reason],
                sync_paused_at=Connection.created_at,
                next_sync_at=None,
            )
        )
        activity_before = session.scalar(
            select(func.count()).select_from(Activity).where(Activity.connection_id == connection_id)
        )
    assert (
        read(flow_client, who, occasion_id, connection_id)["authorization"]["status"] == "reconnect_required"
    )
    r = connect(flow_client, who, occasion_id, connection_id)
    assert r.status_code == 303, r.text
    after = read(flow_client, who, occasion_id, connection_id)
    assert after["id"] == before["id"]
    assert after["principal"] == before["principal"]
    assert after["grants"] == before["grants"]
    assert after["state"] == "enabled"
    assert after["authorization"]["status"] == "authorized"
    assert after["health"] == "unknown"
    assert after["health_reasons"] == []
    with flow_runtime.db.read() as session:
        row = session.get(Connection, connection_id)
        assert row is not None
        assert row.sync_paused_at is None
        assert row.next_sync_at is not None
        queued = list(
            session.scalars(
                select(SyncRun).where(SyncRun.connection_id == connection_id, SyncRun.state == "queued")
            )
        )
        kinds = list(session.scalars(select(Activity.kind).where(Activity.connection_id == connection_id)))
    assert len(queued) == 1
    assert queued[0].requested_by == who.user.caller.subject_id
    assert len(kinds) == activity_before + 1
    assert kinds.count("connection.authorized") == 2
