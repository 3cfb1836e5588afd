"""guest_messaging against the messaging partner simulator, in-process: its calls carry a bearer
from a hand-made token source (as the framework's would), so sync pages with a cursor across
runs, callbacks map, the check asks ``/me`` and ``send_invitations`` sends once per run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.messaging import BASE, CONFIG, MessagingSim, messaging_sim
from tovplus.errors import CallbackRejected, CredentialsRejected, Forbidden, InvalidInput, PartnerUnavailable
from tovplus.integrations.actions import GuestData
from tovplus.integrations.adapters.guest_messaging import GuestMessagingAdapter
from tovplus.integrations.auth import AuthorizationStatus, OAuth2Auth
from tovplus.integrations.contract import CheckContext, RecordUpsert, SyncResult, ValidationContext
from tovplus.integrations.contract import validate_connection as validate
from tovplus.integrations.sync_state import MemoryCheckpoints
from tovplus.testing import action_context, default_scope, run_callback, sync_context

pytestmark = pytest.mark.no_db
ADAPTER = GuestMessagingAdapter()
GUESTS = [
    GuestData("gst_1", "Iryna Koval", "iryna@example.com"),
    GuestData("gst_2", "Maksym Bondar", None),
    GuestData("gst_3", "Sofia Shevchenko", "sofia@example.com"),
]


@pytest.fixture
def sim() -> Iterator[MessagingSim]:
    with messaging_sim() as s:
        yield s


def sync(sim: MessagingSim, *, state: Any = None, full: bool = False) -> tuple[SyncResult, MemoryCheckpoints]:
    """Run one sync as the worker would: checkpointed pages, then the returned last page."""
    ctx = sync_context(config=CONFIG, secrets={}, http=sim.http, state=state, full=full)
    result = ADAPTER.sync(ctx)
    assert isinstance(ctx.checkpointer, MemoryCheckpoints)
    return replace(result, state=ctx.state if result.state is None else result.state), ctx.checkpointer


def every_record(result: SyncResult, pages: MemoryCheckpoints) -> dict[str, dict[str, Any]]:
    found = [*pages.records, *result.records]
    assert all(isinstance(r, RecordUpsert) and r.kind == "rsvp" for r in found)
    return {r.external_id: dict(r.data) for r in found if isinstance(r, RecordUpsert)}


def cursors_asked(sim: MessagingSim, since: int = 0) -> list[str | None]:
    """The cursor of every ``GET /rsvps`` the simulator answered since the ``since``-th."""
    cursors = sim.stats()["rsvp_cursors"]
    assert isinstance(cursors, list)
    return cursors[since:]


# --- declarations -------------------------------------------------------------------------------


def test_it_is_declared_as_the_contract_says():
    d = ADAPTER.describe()
    assert (d["category"], d["direction"], d["mode"]) == ("messaging", "bidirectional", "push")
    assert d["auth"] == {"type": "oauth2", "scopes": ["messages.send", "rsvps.read"], "pkce": True}
    assert d["supports_background_sync"]
    assert d["supports_inbound_callbacks"]
    assert d["supports_credential_check"] is True
    assert d["action_keys"] == ["occasion.read", "guests.read"]
    assert d["secret_fields"] == []
    assert [f["key"] for f in d["config_fields"]] == ["sender_name", "api_base_url", "oauth_base_url"]
    assert [(a["key"], a["requires"]) for a in d["actions"]] == [("send_invitations", ["guests.read"])]
    inputs = {f["key"]: (f["type"], f["required"]) for f in d["actions"][0]["input_fields"]}
    assert inputs == {"message": ("string", True), "guest_ids": ("string_list", False)}
    assert isinstance(ADAPTER.auth, OAuth2Auth)
    assert ADAPTER.auth.urls(CONFIG) == (f"{BASE}/oauth/authorize", f"{BASE}/oauth/token")


def validation(config: dict[str, Any], authorization: AuthorizationStatus | None) -> set[tuple[str, str]]:
    ctx = ValidationContext(
        config=config,
        secrets_present=frozenset(),
        scope=default_scope(ADAPTER),
        allow_private_urls=True,
        authorization=authorization,
    )
    return {(e.field, e.code) for e in validate(ADAPTER, ctx).errors}


def test_a_connection_needs_its_settings_and_a_grant():
    assert validation(CONFIG, AuthorizationStatus.AUTHORIZED) == set()
    assert validation(CONFIG, AuthorizationStatus.PENDING) == {("authorization", "required")}
    assert validation({**CONFIG, "sender_name": "x" * 61}, AuthorizationStatus.AUTHORIZED) == {
        ("config.sender_name", "too_long")
    }
    assert validation({}, None) == {
        ("config.sender_name", "required"),
        ("config.api_base_url", "required"),
        ("config.oauth_base_url", "required"),
        ("authorization", "required"),
    }


# --- sync ------------------------------------------------------------------------------------------


def test_sync_pages_until_next_cursor_is_null_checkpointing_each_page(sim):
    sim.control(page_size=2)
    sim.rsvps(("gst_1", "yes"), ("gst_2", "no"), ("gst_3", "maybe"), ("gst_4", "yes"), ("gst_5", "no"))
    result, pages = sync(sim)
    assert len(pages.pages) == 2  # pages 1 and 2 committed as they came; page 3 is the result
    assert [len(records) for _, records in pages.pages] == [2, 2]
    assert len(result.records) == 1
    found = every_record(result, pages)
    assert {k: v["response"] for k, v in found.items()} == {
        "gst_1": "yes",
        "gst_2": "no",
        "gst_3": "maybe",
        "gst_4": "yes",
        "gst_5": "no",
    }
    assert set(found["gst_1"]) == {"guest_id", "response", "updated_at"}
    assert result.summary == "5 RSVPs updated"
    # each checkpoint carries the cursor that continues after it; the kept state is the last one asked
    assert [state["cursor"] for state, _ in pages.pages] == [
        pages.pages[0][0]["cursor"],
        result.state["cursor"],
    ]
    assert cursors_asked(sim)[0] is None
    assert len(cursors_asked(sim)) == 3


def test_the_next_run_starts_from_the_kept_cursor(sim):
    sim.control(page_size=2)
    sim.rsvps(("gst_1", "yes"), ("gst_2", "no"), ("gst_3", "maybe"))
    first, _ = sync(sim)
    kept = first.state
    assert isinstance(kept["cursor"], str)
    sim.rsvps(("gst_1", "no"), ("gst_4", "yes"))  # an answer changed, and a new one
    asked_before = len(cursors_asked(sim))
    second, pages = sync(sim, state=kept)
    asked = cursors_asked(sim, asked_before)
    assert asked[0] is not None, "the second run must not start from the beginning"
    found = every_record(second, pages)
    assert found["gst_1"]["response"] == "no"
    assert "gst_4" in found
    assert "gst_2" not in found  # already read before the kept cursor


def test_a_full_run_starts_from_no_cursor_and_returns_everything(sim):
    sim.control(page_size=2)
    sim.rsvps(("gst_1", "yes"), ("gst_2", "no"), ("gst_3", "maybe"))
    first, _ = sync(sim)
    before = len(cursors_asked(sim))
    full, pages = sync(sim, state=first.state, full=True)
    assert cursors_asked(sim, before)[0] is None
    assert set(every_record(full, pages)) == {"gst_1", "gst_2", "gst_3"}


def test_a_run_resumes_from_its_last_checkpoint(sim):
    sim.control(page_size=1)
    sim.rsvps(("gst_1", "yes"), ("gst_2", "no"), ("gst_3", "maybe"))
    _, pages = sync(sim)
    after_first_page = pages.pages[0][0]  # what a run that died after page 1 would resume with
    before = len(cursors_asked(sim))
    resumed, more = sync(sim, state=after_first_page)
    assert len(cursors_asked(sim, before)) == 2
    assert set(every_record(resumed, more)) == {"gst_2", "gst_3"}


def test_an_empty_partner_is_a_quiet_success(sim):
    result, pages = sync(sim)
    assert (list(result.records), pages.pages, result.state) == ([], [], {"cursor": None})


def test_an_expired_access_token_is_refreshed_once_and_the_sync_goes_on(sim):
    sim.rsvps(("gst_1", "yes"))
    sim.control(access_ttl=60)
    sim.tokens.refresh_after_rejection(sim.tokens.access)  # a token with the short life
    sim.clock.now += 61
    result, _ = sync(sim)
    assert [r.external_id for r in result.records] == ["gst_1"]
    assert sim.tokens.refreshes == 2
    assert sim.stats()["reuse_attempts"] == 0


def test_a_partner_that_refuses_every_token_is_credentials_rejected(sim):
    sim.control(api_401=True)
    with pytest.raises(CredentialsRejected) as caught:
        sync(sim)
    assert sim.tokens.access not in str(caught.value)
    assert sim.tokens.refreshes == 1  # the bearer refreshed once, then the adapter gave up


def test_a_refused_grant_stops_the_sync(sim):
    sim.control(access_ttl=1)
    sim.tokens.refresh_after_rejection(sim.tokens.access)
    sim.control(invalid_grant=True)
    sim.clock.now += 5
    with pytest.raises(CredentialsRejected):
        sync(sim)


# --- callbacks ------------------------------------------------------------------------------------


def test_rsvp_received_upserts_the_rsvp_record():
    payload = {
        "event": "rsvp.received",
        "guest_id": "gst_1",
        "response": "maybe",
        "occurred_at": "2027-01-05T10:00:00Z",
    }
    result = run_callback(ADAPTER, payload)
    [record] = result.records
    assert (record.kind, record.external_id) == ("rsvp", "gst_1")
    assert record.data == {"guest_id": "gst_1", "response": "maybe", "updated_at": "2027-01-05T10:00:00Z"}
    assert record.updated_at == datetime(2027, 1, 5, 10, tzinfo=UTC)
    assert "gst_1" in result.summary


def test_message_delivered_is_activity_only():
    result = run_callback(ADAPTER, {"event": "message.delivered", "guest_id": "gst_2", "batch_id": "bat_1"})
    assert list(result.records) == []
    assert "bat_1" in result.summary
    assert result.details == {"event": "message.delivered", "guest_id": "gst_2", "batch_id": "bat_1"}


@pytest.mark.parametrize(
    ("payload", "issues"),
    [
        ({"event": "rsvp.cancelled", "guest_id": "g"}, {("payload.event", "unsupported")}),
        (
            {
                "event": "rsvp.received",
                "guest_id": "g",
                "response": "perhaps",
                "occurred_at": "2027-01-05T10:00:00Z",
            },
            {("payload.response", "unsupported")},
        ),
        (
            {"event": "rsvp.received", "guest_id": "g", "response": "yes", "occurred_at": "yesterday"},
            {("payload.occurred_at", "invalid_format")},
        ),
        ({"event": "message.delivered", "guest_id": "g"}, {("payload.batch_id", "required")}),
        (
            {"event": "message.delivered", "guest_id": "g", "batch_id": "b", "extra": 1},
            {("payload.extra", "unexpected")},
        ),
        (["rsvp.received"], {("payload", "invalid_type")}),
    ],
    ids=["unknown-event", "bad-response", "bad-time", "no-batch", "extra-key", "not-an-object"],
)
def test_any_other_shape_is_rejected_with_field_issues(payload, issues):
    with pytest.raises(CallbackRejected) as caught:
        run_callback(ADAPTER, payload)
    assert issues <= {(i.field, i.code) for i in caught.value.fields}


# --- the credential check --------------------------------------------------------------------------


def check(sim: MessagingSim) -> Any:
    ctx = CheckContext("con_test", "occ_test", CONFIG, {}, sim.http, datetime.now(UTC))
    return ADAPTER.check(ctx)


def test_the_check_names_the_account(sim):
    result = check(sim)
    assert "Olena & Taras" in result.summary
    assert list(result.drift) == []


def test_the_check_is_credentials_rejected_on_401(sim):
    sim.control(api_401=True)
    with pytest.raises(CredentialsRejected):
        check(sim)


# --- send_invitations --------------------------------------------------------------------------------


def invite(sim: MessagingSim, input: dict[str, Any], *, run_id: str = "arun_1", keys: Any = None) -> Any:
    spec = ADAPTER.action("send_invitations")
    assert spec is not None
    checked = spec.check_input(input)
    ctx = action_context(
        config=CONFIG,
        secrets={},
        http=sim.http,
        guests=GUESTS,
        run_id=run_id,
        action_keys=ADAPTER.action_keys if keys is None else keys,
    )
    return ADAPTER.perform("send_invitations", checked, ctx)


def test_send_invitations_sends_every_guest_with_the_run_id_as_idempotency_key(sim):
    result = invite(sim, {"message": "We are getting married! Join us on 12 June."})
    [message] = sim.stats()["messages"]
    assert message["idempotency_key"] == "arun_1"
    assert message["sender_name"] == "Olena & Taras"
    assert message["message"] == "We are getting married! Join us on 12 June."
    assert message["recipients"] == [
        {"guest_id": "gst_1", "name": "Iryna Koval", "email": "iryna@example.com"},
        {"guest_id": "gst_2", "name": "Maksym Bondar", "email": None},
        {"guest_id": "gst_3", "name": "Sofia Shevchenko", "email": "sofia@example.com"},
    ]
    assert result.details["accepted"] == 3
    assert result.details["batch_id"] == message["batch_id"]
    assert message["batch_id"] in result.summary


def test_a_repeated_attempt_of_the_same_run_sends_once(sim):
    first = invite(sim, {"message": "Hello"})
    again = invite(sim, {"message": "Hello"})
    stats = sim.stats()
    assert len(stats["messages"]) == 1
    assert stats["message_replays"] == 1
    assert first.details == again.details


def test_guest_ids_pick_the_recipients(sim):
    invite(sim, {"message": "Hello", "guest_ids": ["gst_3", "gst_1", "gst_3"]})
    [message] = sim.stats()["messages"]
    assert [r["guest_id"] for r in message["recipients"]] == ["gst_3", "gst_1"]


def test_unknown_guest_ids_fail_naming_them_and_send_nothing(sim):
    with pytest.raises(InvalidInput) as caught:
        invite(sim, {"message": "Hello", "guest_ids": ["gst_1", "gst_nobody", "gst_ghost"]})
    assert "gst_nobody" in caught.value.message
    assert "gst_ghost" in caught.value.message
    assert [(i.field, i.code) for i in caught.value.fields] == [("input.guest_ids", "unknown_guest")]
    assert sim.stats()["messages"] == []
    assert sim.stats()["message_requests"] == 0


def test_a_503_is_partner_unavailable_and_the_retry_with_the_same_run_sends_once(sim):
    sim.control(messages_fail=1)
    with pytest.raises(PartnerUnavailable):
        invite(sim, {"message": "Hello"})
    invite(sim, {"message": "Hello"})  # the framework's retry: the same run id
    invite(sim, {"message": "Hello"})
    stats = sim.stats()
    assert len(stats["messages"]) == 1
    assert stats["idempotency_keys"] == ["arun_1"]


def test_a_refused_token_is_credentials_rejected(sim):
    sim.control(api_401=True)
    with pytest.raises(CredentialsRejected):
        invite(sim, {"message": "Hello"})


def test_without_guests_read_it_may_not_read_the_guests(sim):
    with pytest.raises(Forbidden):
        invite(sim, {"message": "Hello"}, keys=("occasion.read",))
    assert sim.stats()["message_requests"] == 0


@pytest.mark.parametrize(
    ("input", "field", "code"),
    [
        ({}, "input.message", "required"),
        ({"message": "x" * 2001}, "input.message", "too_long"),
        ({"message": "  "}, "input.message", "required"),
        ({"message": "Hi", "guest_ids": "gst_1"}, "input.guest_ids", "invalid_type"),
        ({"message": "Hi", "guest_ids": []}, "input.guest_ids", "too_short"),
        ({"message": "Hi", "guest_ids": ["gst_1", ""]}, "input.guest_ids.1", "required"),
        ({"message": "Hi", "send_at": "now"}, "input.send_at", "unknown_field"),
    ],
)
def test_the_input_is_checked_before_anything_runs(input, field, code):
    spec = ADAPTER.action("send_invitations")
    assert spec is not None
    with pytest.raises(InvalidInput) as caught:
        spec.check_input(input)
    assert (field, code) in {(i.field, i.code) for i in caught.value.fields}
