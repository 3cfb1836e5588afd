"""OAuth2 connections in sync, actions, the scheduler, revocation and ``secrets reencrypt``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from tests.oauth.support import CLIENT_SECRET, FakePartner, TokenIssuer, authorized_connection, registry
from tovplus.app import create_app
from tovplus.db.models import ActionRun, Connection, OAuthClient, OAuthGrant, SyncRun
from tovplus.db.types import utcnow
from tovplus.integrations.auth import AuthorizationStatus
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.keyring import Keyring, generate_key
from tovplus.services import actions, oauth
from tovplus.services import sync as syncs
from tovplus.services.connections import ConnectionPatch, update_connection
from tovplus.settings import Settings


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = build_runtime(settings, registry=registry())
    yield runtime
    runtime.close()


@pytest.fixture
def partner() -> FakePartner:
    return FakePartner(TokenIssuer(lifetime=3600))


def run_sync(rt: Runtime, connection_id: str, partner: FakePartner) -> syncs.RunOutcome:
    with rt.db.write() as session:
        run_id, _ = syncs.enqueue_run(session, connection_id, trigger="manual", requested_by="t")
    return syncs.execute_run(rt, run_id, worker_id="w1", http=partner.client())


def grant_of(rt: Runtime, connection_id: str) -> OAuthGrant | None:
    with rt.db.read() as session:
        grant = session.get(OAuthGrant, connection_id)
        if grant is not None:
            session.expunge(grant)
        return grant


def health_of(rt: Runtime, connection_id: str) -> tuple[str, list[str]]:
    with rt.db.read() as session:
        conn = session.get(Connection, connection_id)
        assert conn is not None
        return conn.health, list(conn.health_reasons)


def test_a_sync_sends_the_bearer_and_its_context_holds_the_token(rt, partner):
    made = authorized_connection(rt, partner.issuer)
    outcome = run_sync(rt, made.connection_id, partner)
    assert outcome.state == "succeeded", outcome
    grant = grant_of(rt, made.connection_id)
    assert grant is not None
    with rt.db.read() as session:
        stored = oauth.open_access_token(session.get(OAuthGrant, made.connection_id), rt.keyring)
    assert partner.api_calls == [stored]
    assert partner.issuer.refreshes == []


def test_a_401_from_the_partner_refreshes_once_and_retries_once(rt, partner):
    made = authorized_connection(rt, partner.issuer)
    old = oauth.open_access_token(grant_of(rt, made.connection_id), rt.keyring)
    partner.reject_next = 1
    outcome = run_sync(rt, made.connection_id, partner)
    assert outcome.state == "succeeded", outcome
    assert len(partner.issuer.refreshes) == 1
    new = oauth.open_access_token(grant_of(rt, made.connection_id), rt.keyring)
    assert partner.api_calls == [old, new]
    assert new != old


def test_a_second_401_is_not_retried_again_and_fails_on_the_credentials(rt, partner):
    made = authorized_connection(rt, partner.issuer)
    partner.reject_next = 5
    outcome = run_sync(rt, made.connection_id, partner)
    assert outcome.state == "failed"
    assert len(partner.issuer.refreshes) == 1
    assert len(partner.api_calls) == 2
    assert health_of(rt, made.connection_id)[0] == "failing"


def test_an_expiring_token_is_refreshed_before_the_sync_calls_the_partner(rt, partner):
    made = authorized_connection(rt, partner.issuer, expires_in=30)  # inside the 120 s margin
    outcome = run_sync(rt, made.connection_id, partner)
    assert outcome.state == "succeeded"
    assert len(partner.issuer.refreshes) == 1
    assert partner.api_calls == [oauth.open_access_token(grant_of(rt, made.connection_id), rt.keyring)]


def test_a_token_endpoint_that_is_down_makes_the_run_retry(rt, partner):
    made = authorized_connection(rt, partner.issuer, expires_in=30)
    partner.issuer.down = True
    outcome = run_sync(rt, made.connection_id, partner)
    assert outcome.state == "retrying", outcome
    assert partner.api_calls == []


def test_invalid_grant_stops_the_schedule_and_a_manual_sync_is_409(rt, partner):
    refused = authorized_connection(rt, partner.issuer, expires_in=30)
    fine = authorized_connection(rt, partner.issuer)
    partner.issuer.refuse_grant = True
    outcome = run_sync(rt, refused.connection_id, partner)
    assert outcome.state == "failed"
    grant = grant_of(rt, refused.connection_id)
    assert grant is not None
    assert grant.status == AuthorizationStatus.RECONNECT_REQUIRED
    health, reasons = health_of(rt, refused.connection_id)
    # (the "authorization" validation reason beside it is the flow's: validation_of does not pass the
    # grant's status yet)
    assert health == "failing"
    assert any("press Reconnect" in r for r in reasons), reasons
    with rt.db.write() as session:
        session.execute(update(Connection).values(next_sync_at=utcnow() - timedelta(seconds=1)))
    ticked = syncs.tick(rt)
    with rt.db.read() as session:
        queued = {session.get(SyncRun, r).connection_id for r in ticked.run_ids}  # type: ignore[union-attr]
    assert queued == {fine.connection_id}
    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        r = client.post(
            f"/v1/occasions/{refused.occasion_id}/integrations/connections/{refused.connection_id}/sync",
            headers={"Authorization": f"Bearer {refused.owner.token}"},
        )
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "reconnect_required"
        assert "Reconnect" in r.json()["error"]["message"]
        body = client.get(
            f"/v1/occasions/{refused.occasion_id}/integrations/connections/{refused.connection_id}",
            headers={"Authorization": f"Bearer {refused.owner.token}"},
        ).text
    for value in [r["token"] for r in partner.issuer.refreshes] + list(partner.issuer.access):
        assert value not in body
    # reconnecting (a new grant from the code exchange) lets it be queued again
    pair = partner.issuer.issue()
    with rt.db.write() as session:
        oauth.store_grant(
            session,
            rt.keyring,
            refused.connection_id,
            oauth.TokenSet(pair["access_token"], pair["refresh_token"], utcnow() + timedelta(hours=1)),
            actor=refused.owner.id,
        )
    with rt.db.read() as session:
        due = set(session.scalars(syncs.due_connections(["oauth_partner"], utcnow(), 10)))
    assert refused.connection_id in due


def test_an_action_sends_the_bearer(rt, partner):
    made = authorized_connection(rt, partner.issuer)
    requested = actions.request_action(
        rt, made.owner.caller, made.occasion_id, made.connection_id, "ping", {}
    )
    outcome = actions.execute_action_run(rt, requested.run.id, worker_id="w1", http=partner.client())
    assert outcome.state == "succeeded", outcome
    token = oauth.open_access_token(grant_of(rt, made.connection_id), rt.keyring)
    assert partner.api_calls == [token]


def test_an_action_on_a_refused_grant_fails_on_the_credentials(rt, partner):
    made = authorized_connection(rt, partner.issuer, expires_in=30)
    partner.issuer.refuse_grant = True
    requested = actions.request_action(
        rt, made.owner.caller, made.occasion_id, made.connection_id, "ping", {}
    )
    outcome = actions.execute_action_run(rt, requested.run.id, worker_id="w1", http=partner.client())
    assert outcome.state == "failed"
    assert partner.api_calls == []
    with rt.db.read() as session:
        run = session.get(ActionRun, requested.run.id)
        assert run is not None
        assert "Reconnect" in (run.error or "")


def test_revoking_a_connection_destroys_its_grant(rt, partner):
    made = authorized_connection(rt, partner.issuer)
    assert grant_of(rt, made.connection_id) is not None
    update_connection(
        rt, made.owner.caller, made.occasion_id, made.connection_id, ConnectionPatch(state="revoked")
    )
    assert grant_of(rt, made.connection_id) is None


def test_secrets_reencrypt_reseals_grants_and_clients(
    rt, partner, settings, secret_keys, monkeypatch: pytest.MonkeyPatch
):
    made = authorized_connection(rt, partner.issuer)
    access = oauth.open_access_token(grant_of(rt, made.connection_id), rt.keyring)
    old_id = rt.keyring.primary_id
    new_entry = generate_key()
    rotated = Keyring.parse(f"{new_entry},{secret_keys}")
    for name, value in {
        "TOVPLUS_DATABASE_URL": settings.database_url,
        "TOVPLUS_DATA_DIR": str(settings.data_dir),
        "TOVPLUS_SECRET_KEYS": f"{new_entry},{secret_keys}",
        "TOVPLUS_QUEUE_URL": "memory://",
        "TOVPLUS_ENVIRONMENT": "test",
    }.items():
        monkeypatch.setenv(name, value or "")
    from tovplus.cli import app

    result = CliRunner().invoke(app, ["secrets", "reencrypt"])
    assert result.exit_code == 0, result.output
    assert "oauth_grants=1" in result.output, result.output
    assert "oauth_clients=1" in result.output, result.output
    with rt.db.read() as session:
        grant = session.get(OAuthGrant, made.connection_id)
        client = session.get(OAuthClient, "oauth_partner")
        assert grant is not None
        assert client is not None
        assert {grant.access_key_id, grant.refresh_key_id, client.secret_key_id} == {rotated.primary_id}
        assert rotated.primary_id != old_id
        new_only = Keyring.parse(new_entry)
        assert oauth.open_access_token(grant, new_only) == access
        assert oauth.client_credentials(session, new_only, "oauth_partner").client_secret == CLIENT_SECRET  # type: ignore[union-attr]
        assert grant.token_version == 1  # a re-seal fences no refresher out
    again = CliRunner().invoke(app, ["secrets", "reencrypt"])
    assert "oauth_grants=0" in again.output, again.output
    assert "oauth_clients=0" in again.output, again.output


def test_an_oauth_connection_without_stored_secrets_claims_its_run(rt, partner):
    made = authorized_connection(rt, partner.issuer)
    with rt.db.read() as session:
        from tovplus.db.models import ConnectionSecret

        assert (
            session.scalars(
                select(ConnectionSecret).where(ConnectionSecret.connection_id == made.connection_id)
            ).all()
            == []
        )
    assert run_sync(rt, made.connection_id, partner).state == "succeeded"


def test_grants_about_to_expire_are_refreshed_ahead_without_a_sync(rt, partner):
    expiring = authorized_connection(rt, partner.issuer, expires_in=30)
    fresh = authorized_connection(rt, partner.issuer)
    disabled = authorized_connection(rt, partner.issuer, expires_in=30)
    with rt.db.write() as session:
        session.execute(
            update(Connection).where(Connection.id == disabled.connection_id).values(state="disabled")
        )
    assert oauth.expiring_grants(rt, utcnow(), 10) == [expiring.connection_id]
    assert oauth.refresh_expiring(rt, owner="leader", http=partner.client()) == 1
    assert len(partner.issuer.refreshes) == 1
    assert grant_of(rt, expiring.connection_id).token_version == 2  # type: ignore[union-attr]
    assert grant_of(rt, fresh.connection_id).token_version == 1  # type: ignore[union-attr]
    assert oauth.expiring_grants(rt, utcnow(), 10) == []


def test_a_grant_that_cannot_refresh_ahead_waits_before_it_is_tried_again(rt, partner):
    expiring = authorized_connection(rt, partner.issuer, expires_in=30)
    partner.issuer.down = True
    assert oauth.refresh_expiring(rt, owner="leader", http=partner.client()) == 0
    partner.issuer.down = False
    assert oauth.refresh_expiring(rt, owner="leader", http=partner.client()) == 0  # cooling down
    assert partner.issuer.refreshes == []
    assert oauth.expiring_grants(rt, utcnow(), 10) == [expiring.connection_id]


def test_the_leading_ticker_refreshes_expiring_grants_on_its_own_thread(rt, partner, monkeypatch):
    expiring = authorized_connection(rt, partner.issuer, expires_in=30)
    real = oauth.refresh_expiring
    calls: list[str] = []

    def over_the_fake_partner(runtime: Runtime, *, owner: str) -> int:
        calls.append(owner)
        return real(runtime, owner=owner, http=partner.client())

    monkeypatch.setattr("tovplus.worker.ticker.oauth.refresh_expiring", over_the_fake_partner)

    class Quiet:
        def sync_runs(self, run_ids: list[str]) -> None: ...
        def webhook_deliveries(self, delivery_ids: list[str]) -> None: ...
        def action_runs(self, run_ids: list[str]) -> None: ...

    from tovplus.worker import Ticker

    leader, follower = Ticker(rt, Quiet(), "leader", interval=1), Ticker(rt, Quiet(), "follower", interval=1)
    assert leader.tick_once().leader
    assert not follower.tick_once().leader
    assert leader._refresher is not None
    leader._refresher.join(10)
    leader.stop()
    assert calls == ["leader"]
    assert len(partner.issuer.refreshes) == 1
    assert grant_of(rt, expiring.connection_id).token_version == 2  # type: ignore[union-attr]
