"""The fenced refresh lease in one process: margin, fencing, rotation, refusal, 401, failures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from tests.oauth.support import FakePartner, TokenIssuer, authorized_connection, registry
from tovplus.db.models import Activity, Connection, OAuthGrant, WebhookDelivery
from tovplus.db.types import utcnow
from tovplus.errors import CredentialsRejected, PartnerUnavailable
from tovplus.integrations.auth import AuthorizationStatus
from tovplus.runtime import Runtime, build_runtime
from tovplus.services import oauth, webhooks
from tovplus.services.oauth.refresh import GrantTokenSource
from tovplus.settings import Settings


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    tuned = settings.model_copy(
        update={
            "oauth_refresh_margin_seconds": 120.0,
            "oauth_refresh_lease_seconds": 2.0,
            "oauth_token_timeout_seconds": 1.0,
        }
    )
    runtime = build_runtime(tuned, registry=registry())
    yield runtime
    runtime.close()


@pytest.fixture
def partner() -> FakePartner:
    return FakePartner(TokenIssuer(lifetime=3600))


def grant_of(rt: Runtime, connection_id: str) -> OAuthGrant:
    with rt.db.read() as session:
        grant = session.get(OAuthGrant, connection_id)
        assert grant is not None
        session.expunge(grant)
        return grant


def stored_tokens(rt: Runtime, connection_id: str) -> tuple[str | None, str | None]:
    """``(access, refresh)`` as a fresh read of the database sees them."""
    with rt.db.read() as session:
        grant = session.get(OAuthGrant, connection_id)
        assert grant is not None
        return oauth.open_access_token(grant, rt.keyring), oauth.tokens.open_refresh_token(grant, rt.keyring)


def source(rt: Runtime, cid: str, partner: FakePartner, owner: str = "test") -> GrantTokenSource:
    return GrantTokenSource(rt, cid, owner, http=partner.client())


def test_a_token_valid_past_the_margin_is_used_as_stored(rt, partner):
    made = authorized_connection(rt, partner.issuer, expires_in=121)
    before = stored_tokens(rt, made.connection_id)
    assert source(rt, made.connection_id, partner).access_token() == before[0]
    assert partner.issuer.refreshes == []
    assert grant_of(rt, made.connection_id).token_version == 1


def test_a_token_within_the_margin_is_refreshed_and_the_rotated_refresh_token_is_stored_first(
    rt, partner, settings
):
    made = authorized_connection(rt, partner.issuer, expires_in=119)
    old_access, old_refresh = stored_tokens(rt, made.connection_id)
    token = source(rt, made.connection_id, partner).access_token()
    assert token != old_access
    assert partner.issuer.valid(token)
    assert [r["token"] for r in partner.issuer.refreshes] == [old_refresh]
    # another process (its own engine) sees the rotated pair the moment the token was handed out
    other = build_runtime(rt.settings, registry=registry())
    try:
        access, refresh = stored_tokens(other, made.connection_id)
    finally:
        other.close()
    assert access == token
    assert refresh is not None
    assert refresh in partner.issuer.live_refresh
    grant = grant_of(rt, made.connection_id)
    assert grant.token_version == 2
    assert grant.lease_owner is None
    assert grant.lease_expires_at is None
    assert grant.refreshed_at is not None
    assert grant.lease_fence == 1
    assert grant.expires_at is not None
    assert grant.expires_at > utcnow() + timedelta(seconds=3500)


def test_a_partner_that_does_not_rotate_keeps_the_refresh_token(rt, partner):
    partner.issuer.rotate = False
    made = authorized_connection(rt, partner.issuer, expires_in=5)
    _, old_refresh = stored_tokens(rt, made.connection_id)
    source(rt, made.connection_id, partner).access_token()
    assert stored_tokens(rt, made.connection_id)[1] == old_refresh


def test_a_stale_fence_writes_nothing(rt, partner):
    made = authorized_connection(rt, partner.issuer, expires_in=5)
    slow, fast = (
        source(rt, made.connection_id, partner, "slow"),
        source(rt, made.connection_id, partner, "fast"),
    )
    fence, _ = slow._take_lease(1)
    assert fence == 1
    with rt.db.write() as session:  # the slow holder's lease runs out
        session.execute(update(OAuthGrant).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    winner = fast.access_token()
    assert fast.refreshes == 1
    assert grant_of(rt, made.connection_id).lease_fence == 2
    late = oauth.TokenSet("at_late_answer", "rt_late_answer", utcnow() + timedelta(hours=1))
    assert slow._store(fence, late) is False
    assert stored_tokens(rt, made.connection_id)[0] == winner
    assert grant_of(rt, made.connection_id).token_version == 2


def test_a_slow_refresher_taken_over_mid_call_drops_its_answer_and_uses_the_winners(rt, partner):
    made = authorized_connection(rt, partner.issuer, expires_in=5)
    cid = made.connection_id
    fast = source(rt, cid, partner, "fast")
    calls: list[str] = []

    def slow_endpoint(request: httpx.Request) -> httpx.Response:
        calls.append("slow")
        with rt.db.write() as session:  # our lease expires while the partner thinks…
            session.execute(update(OAuthGrant).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        fast.access_token()  # …and another process refreshes meanwhile
        return httpx.Response(
            200, json={"access_token": "at_slow", "refresh_token": "rt_slow", "expires_in": 3600}
        )

    slow = GrantTokenSource(rt, cid, "slow", http=httpx.Client(transport=httpx.MockTransport(slow_endpoint)))
    token = slow.access_token()
    assert calls == ["slow"]
    assert slow.refreshes == 0
    assert fast.refreshes == 1
    assert token == stored_tokens(rt, cid)[0] != "at_slow"
    assert stored_tokens(rt, cid)[1] != "rt_slow"
    assert partner.issuer.reused == []


def test_a_refusal_of_a_taken_over_refresh_leaves_the_grant_to_the_winner(rt, partner):
    made = authorized_connection(rt, partner.issuer, expires_in=5)
    cid = made.connection_id
    fast = source(rt, cid, partner, "fast")

    def refusing_endpoint(request: httpx.Request) -> httpx.Response:
        with rt.db.write() as session:
            session.execute(update(OAuthGrant).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        fast.access_token()
        return httpx.Response(400, json={"error": "invalid_grant"})

    slow = GrantTokenSource(
        rt, cid, "slow", http=httpx.Client(transport=httpx.MockTransport(refusing_endpoint))
    )
    assert slow.access_token() == stored_tokens(rt, cid)[0]
    assert grant_of(rt, cid).status == AuthorizationStatus.AUTHORIZED


def test_a_lease_another_process_holds_is_waited_for_then_its_token_used(rt, partner):
    made = authorized_connection(rt, partner.issuer, expires_in=5)
    cid = made.connection_id
    holder = source(rt, cid, partner, "holder")
    fence, refresh = holder._take_lease(1)
    assert fence is not None
    assert refresh is not None

    import threading

    def finish_later() -> None:
        time.sleep(0.3)
        status, body = partner.issuer.refresh(refresh)
        assert status == 200
        assert holder._store(
            fence, oauth.TokenSet(body["access_token"], body["refresh_token"], utcnow() + timedelta(hours=1))
        )

    t = threading.Thread(target=finish_later)
    t.start()
    waiter = source(rt, cid, partner, "waiter")
    started = time.monotonic()
    token = waiter.access_token()
    t.join()
    assert time.monotonic() - started >= 0.25
    assert waiter.refreshes == 0
    assert len(partner.issuer.refreshes) == 1
    assert token == stored_tokens(rt, cid)[0]


def test_a_dead_holders_lease_is_taken_once_it_expires(rt, partner):
    made = authorized_connection(rt, partner.issuer, expires_in=5)
    cid = made.connection_id
    until = utcnow() + timedelta(seconds=0.4)
    with rt.db.write() as session:  # a process took the lease and was killed
        session.execute(update(OAuthGrant).values(lease_owner="dead", lease_expires_at=until, lease_fence=7))
    started = time.monotonic()
    token = source(rt, cid, partner).access_token()
    assert time.monotonic() - started >= 0.3
    assert utcnow() >= until
    grant = grant_of(rt, cid)
    assert grant.lease_fence == 8
    assert grant.lease_owner is None
    assert grant.token_version == 2
    assert partner.issuer.valid(token)
    assert len(partner.issuer.refreshes) == 1


def test_invalid_grant_makes_the_connection_reconnect_required_and_failing(rt, partner):
    made = authorized_connection(rt, partner.issuer, expires_in=5)
    cid = made.connection_id
    _, old_refresh = stored_tokens(rt, cid)
    webhooks.create_endpoint(
        rt,
        made.owner.caller,
        made.occasion_id,
        url="https://hooks.example.com/tov",
        event_types=["integration.health_changed"],
    )
    partner.issuer.refuse_grant = True
    with pytest.raises(CredentialsRejected, match="press Reconnect"):
        source(rt, cid, partner).access_token()
    with rt.db.read() as session:
        delivery = session.scalars(select(WebhookDelivery)).one()
        assert delivery.event_type == "integration.health_changed"
        assert "press Reconnect" in str(delivery.payload)
    grant = grant_of(rt, cid)
    assert grant.status == AuthorizationStatus.RECONNECT_REQUIRED
    assert grant.access_ciphertext is None
    assert grant.refresh_ciphertext is None
    assert grant.lease_owner is None
    with rt.db.read() as session:
        conn = session.get(Connection, cid)
        assert conn is not None
        assert conn.health == "failing"
        assert conn.health_reasons == [
            "Oauth Partner no longer accepts this connection's credentials: press Reconnect on the "
            "connection's page to grant access again."
        ]
        entries = session.scalars(select(Activity).where(Activity.connection_id == cid)).all()
    kinds = [e.kind for e in entries]
    assert "connection.reconnect_required" in kinds
    assert old_refresh is not None
    assert all(old_refresh not in f"{e.summary}{e.details}" for e in entries)
    # later calls say so at once, without asking the partner again
    asked = len(partner.issuer.refreshes)
    with pytest.raises(CredentialsRejected, match="press Reconnect"):
        source(rt, cid, partner).access_token()
    assert len(partner.issuer.refreshes) == asked
    view = oauth.grant_view(grant, rt.registry.get("oauth_partner"))
    assert view == {"status": "reconnect_required", "scopes": ["items.read"], "expires_at": None}


def test_a_token_endpoint_that_is_down_is_unavailable_and_releases_the_lease(rt, partner):
    made = authorized_connection(rt, partner.issuer, expires_in=5)
    partner.issuer.down = True
    with pytest.raises(PartnerUnavailable, match="token endpoint answered 503"):
        source(rt, made.connection_id, partner).access_token()
    grant = grant_of(rt, made.connection_id)
    assert grant.lease_owner is None
    assert grant.status == AuthorizationStatus.AUTHORIZED
    assert grant.token_version == 1
    partner.issuer.down = False
    assert partner.issuer.valid(source(rt, made.connection_id, partner).access_token())


def test_an_unreachable_token_endpoint_is_unavailable(rt, partner):
    made = authorized_connection(rt, partner.issuer, expires_in=5)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    broken = GrantTokenSource(
        rt, made.connection_id, "t", http=httpx.Client(transport=httpx.MockTransport(refuse))
    )
    with pytest.raises(PartnerUnavailable, match="could not be reached"):
        broken.access_token()
    assert grant_of(rt, made.connection_id).lease_owner is None


def test_no_operator_client_is_a_clear_error_naming_the_step(rt, partner):
    made = authorized_connection(rt, partner.issuer, expires_in=5, client=False)
    with pytest.raises(CredentialsRejected, match="tovplus oauth set-client oauth_partner"):
        source(rt, made.connection_id, partner).access_token()
    grant = grant_of(rt, made.connection_id)
    assert grant.status == AuthorizationStatus.AUTHORIZED
    assert grant.lease_owner is None
    assert partner.issuer.refreshes == []


def test_a_refused_operator_client_is_not_the_planners_grant(rt, partner):
    made = authorized_connection(rt, partner.issuer, expires_in=5)

    def bad_client(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "invalid_client"})

    refused = GrantTokenSource(
        rt, made.connection_id, "t", http=httpx.Client(transport=httpx.MockTransport(bad_client))
    )
    with pytest.raises(CredentialsRejected, match="set-client"):
        refused.access_token()
    assert grant_of(rt, made.connection_id).status == AuthorizationStatus.AUTHORIZED


def test_after_a_rejection_a_token_someone_else_stored_is_used_without_a_refresh(rt, partner):
    made = authorized_connection(rt, partner.issuer)
    cid = made.connection_id
    rejected = stored_tokens(rt, cid)[0]
    assert rejected is not None
    first = source(rt, cid, partner, "first")
    fresh = first.refresh_after_rejection(rejected)
    assert fresh != rejected
    assert first.refreshes == 1
    second = source(rt, cid, partner, "second")
    assert second.refresh_after_rejection(rejected) == fresh  # another process already replaced it
    assert second.refreshes == 0
    assert len(partner.issuer.refreshes) == 1


def test_the_token_values_never_show_in_a_repr(rt, partner):
    made = authorized_connection(rt, partner.issuer)
    access, refresh = stored_tokens(rt, made.connection_id)
    src = source(rt, made.connection_id, partner)
    snap = src._read()
    assert access is not None
    assert refresh is not None
    assert access not in repr(snap)
    assert access not in repr(src)
