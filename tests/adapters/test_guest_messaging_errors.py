"""guest_messaging maps every partner failure to the framework's typed errors (a scripted fake
partner, one answer at a time), and passes the conformance suite, as a class and with samples
derived from its declarations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
import pytest

from tovplus.errors import CredentialsRejected, DriftDetected, PartnerUnavailable
from tovplus.integrations.actions import GuestData
from tovplus.integrations.adapters.guest_messaging import GuestMessagingAdapter
from tovplus.integrations.contract import CheckContext
from tovplus.testing import (
    AdapterConformance,
    FakePartner,
    Replies,
    Reply,
    action_context,
    assert_conforms,
    sync_context,
)

pytestmark = pytest.mark.no_db
API = "https://messaging.example.com/v1"
CONFIG = {
    "sender_name": "Olena & Taras",
    "api_base_url": API,
    "oauth_base_url": "https://messaging.example.com",
}
RSVPS = "GET /v1/rsvps"
PAGE = {
    "rsvps": [{"guest_id": "g1", "response": "yes", "updated_at": "2027-01-05T10:00:00Z"}],
    "next_cursor": None,
}
CALLBACK = {
    "event": "rsvp.received",
    "guest_id": "g1",
    "response": "no",
    "occurred_at": "2027-01-05T10:00:00Z",
}
ADAPTER = GuestMessagingAdapter()

FAILURES = [
    (401, CredentialsRejected),
    (403, CredentialsRejected),
    (Reply(429, {"error": "slow down"}, headers={"retry-after": "7"}), PartnerUnavailable),
    (500, PartnerUnavailable),
    (502, PartnerUnavailable),
    (503, PartnerUnavailable),
    (httpx.ConnectTimeout, PartnerUnavailable),
    (httpx.ReadTimeout, PartnerUnavailable),
    (httpx.ConnectError("[Errno 111] Connection refused"), PartnerUnavailable),
    (400, DriftDetected),
    (404, DriftDetected),
    (Reply(200, text="<html>maintenance</html>"), DriftDetected),
    (Reply(200, ["a", "list"]), DriftDetected),
]
IDS = [
    "401",
    "403",
    "429",
    "500",
    "502",
    "503",
    "connect-timeout",
    "read-timeout",
    "refused",
    "400",
    "404",
    "not-json",
    "json-list",
]


def sync(partner: FakePartner, state: Any = None) -> Any:
    with partner.client() as http:
        ctx = sync_context(config=CONFIG, secrets={}, http=http, state=state)
        return ADAPTER.sync(ctx), ctx


@pytest.mark.parametrize(("answer", "error"), FAILURES, ids=IDS)
def test_sync_maps_each_failure_and_stops_at_once(answer: Any, error: type[Exception]) -> None:
    partner = FakePartner.always(answer)
    with pytest.raises(error) as caught:
        sync(partner)
    assert len(partner.requests) == 1
    assert str(caught.value)


@pytest.mark.parametrize(("answer", "error"), FAILURES, ids=IDS)
def test_send_invitations_maps_each_failure(answer: Any, error: type[Exception]) -> None:
    partner = FakePartner.always(answer)
    with partner.client() as http:
        ctx = action_context(config=CONFIG, secrets={}, http=http, guests=[GuestData("g1", "Ola", None)])
        with pytest.raises(error):
            ADAPTER.perform("send_invitations", {"message": "Hi"}, ctx)
    assert len(partner.requests) == 1
    assert partner.requests[0].headers["idempotency-key"] == "arun_test0000000000000001"


@pytest.mark.parametrize(("answer", "error"), FAILURES, ids=IDS)
def test_the_check_maps_each_failure(answer: Any, error: type[Exception]) -> None:
    partner = FakePartner.always(answer)
    with partner.client() as http, pytest.raises(error):
        ADAPTER.check(CheckContext("con_test", "occ_test", CONFIG, {}, http, datetime.now(UTC)))


def test_a_429_keeps_the_partners_retry_after() -> None:
    with pytest.raises(PartnerUnavailable) as caught:
        sync(FakePartner.always(Reply(429, {}, headers={"retry-after": "7"})))
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"next_cursor": None}, "RSVP list"),
        ({"rsvps": "many", "next_cursor": None}, "RSVP list"),
        ({"rsvps": [], "next_cursor": 5}, "next_cursor"),
        ({"rsvps": [], "next_cursor": ""}, "next_cursor"),
    ],
)
def test_an_rsvp_page_of_the_wrong_shape_is_drift(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(DriftDetected, match=reason):
        sync(FakePartner({RSVPS: body}))


def test_bad_rsvp_entries_are_skipped_and_reported_as_drift() -> None:
    page = {
        "rsvps": [
            PAGE["rsvps"][0],
            {"guest_id": "g2", "response": "perhaps"},
            {"response": "yes"},
            "g3",
        ],
        "next_cursor": None,
    }
    result, _ = sync(FakePartner({RSVPS: page}))
    assert [r.external_id for r in result.records] == ["g1"]
    assert result.drift == [
        "The messaging partner sent 3 RSVP entries not in the expected format; they were skipped."
    ]


def test_a_partner_that_sends_the_same_cursor_again_is_stuck() -> None:
    partner = FakePartner({RSVPS: {"rsvps": [], "next_cursor": "c1"}})
    with pytest.raises(PartnerUnavailable, match="stuck"):
        sync(partner, state={"cursor": "c1"})


def test_sync_sends_the_kept_cursor_and_keeps_the_last_one_asked() -> None:
    partner = FakePartner({RSVPS: Replies({"rsvps": [], "next_cursor": "c2"}, PAGE)})
    result, ctx = sync(partner, state={"cursor": "c1"})
    assert [r.url.params.get("cursor") for r in partner.requests] == ["c1", "c2"]
    assert result.state == {"cursor": "c2"}
    assert ctx.checkpointer.pages == [({"cursor": "c2"}, [])]


@pytest.mark.parametrize(
    ("body", "reason"),
    [({"batch_id": 5, "accepted": 1}, "batch_id"), ({"batch_id": "b", "accepted": "all"}, "accepted")],
)
def test_an_answer_to_send_invitations_of_the_wrong_shape_is_drift(body: dict[str, Any], reason: str) -> None:
    partner = FakePartner({"POST /v1/messages": Reply(202, body)})
    with partner.client() as http:
        ctx = action_context(config=CONFIG, secrets={}, http=http, guests=[GuestData("g1", "Ola", None)])
        with pytest.raises(DriftDetected, match=reason):
            ADAPTER.perform("send_invitations", {"message": "Hi"}, ctx)


@pytest.mark.parametrize("body", [{"account": 7}, {}, {"account": ""}])
def test_a_check_answer_without_an_account_is_drift(body: dict[str, Any]) -> None:
    with FakePartner({"GET /v1/me": body}).client() as http, pytest.raises(DriftDetected):
        ADAPTER.check(CheckContext("con_test", "occ_test", CONFIG, {}, http, datetime.now(UTC)))


# --- the conformance suite, both ways the shipped adapters run it ------------------------------


class TestGuestMessagingConforms(AdapterConformance):
    adapter = GuestMessagingAdapter
    sample_config = CONFIG
    sample_secrets: ClassVar[dict[str, str]] = {}
    sample_callback = CALLBACK

    def partner(self) -> FakePartner:
        return FakePartner({RSVPS: PAGE})


def test_guest_messaging_conforms_with_samples_derived_from_its_fields() -> None:
    report = assert_conforms(GuestMessagingAdapter, examples=30)
    ran = [r.name for r in report.results if not r.skipped]
    assert {"declarations", "secrets", "validation", "callbacks", "sync_errors", "actions"} <= set(ran)
