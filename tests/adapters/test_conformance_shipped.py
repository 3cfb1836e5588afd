"""The two shipped adapters pass the conformance suite, and printing_partner's sync maps every
partner failure to the framework's typed error when run against a scripted fake partner."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tovplus.errors import CallbackRejected, CredentialsRejected, DriftDetected, PartnerUnavailable
from tovplus.integrations.adapters.printing_partner import PrintingPartnerAdapter
from tovplus.integrations.adapters.venue_ops import VenueOpsAdapter
from tovplus.integrations.registry import builtin_adapters
from tovplus.testing import (
    AdapterConformance,
    FakePartner,
    Replies,
    Reply,
    assert_conforms,
    records_by_id,
    run_callback,
    run_sync,
)

pytestmark = pytest.mark.no_db

CONFIG = {"account_id": "acct-123", "api_base_url": "https://printer.example.com/api"}
SECRETS = {"api_key": "pk_live_ABCDEFGHIJKLMNOP"}
ACCOUNT = "GET /accounts/acct-123"
ORDERS = "GET /accounts/acct-123/orders"
ORDER = {
    "order_id": "ord-1",
    "status": "proof_ready",
    "updated_at": "2026-11-25T19:40:00Z",
    "tracking_number": None,
}
CALLBACK = {
    "event": "order.status_changed",
    "order_id": "ord-1",
    "status": "shipped",
    "occurred_at": "2026-11-25T19:40:00Z",
    "tracking_number": "TRK-9",
}
VENUE_CONFIG = {"venue_id": "venue-7", "timezone": "Europe/Kyiv"}
VENUE_SECRETS = {"api_token": "vt_0123456789abcdef"}
VENUE_CALLBACK = {"event": "room.assigned", "event_id": "evt_1", "room": "Hall A"}


def printer(*, account: dict[str, Any] | None = None, orders: Any = None) -> FakePartner:
    return FakePartner(
        {
            ACCOUNT: account or {"account_id": "acct-123", "status": "active"},
            ORDERS: {"orders": [ORDER]} if orders is None else orders,
        }
    )


class TestPrintingPartnerConforms(AdapterConformance):
    adapter = PrintingPartnerAdapter
    sample_config = CONFIG
    sample_secrets = SECRETS
    sample_callback = CALLBACK

    def partner(self) -> FakePartner:
        return printer()


class TestVenueOpsConforms(AdapterConformance):
    adapter = VenueOpsAdapter
    sample_config = VENUE_CONFIG
    sample_secrets = VENUE_SECRETS
    sample_callback = VENUE_CALLBACK


@pytest.mark.parametrize("adapter", builtin_adapters(), ids=lambda a: a.integration_key)
def test_shipped_adapters_conform_with_samples_derived_from_their_fields(adapter: Any) -> None:
    report = assert_conforms(adapter, examples=30)
    ran = [r.name for r in report.results if not r.skipped]
    assert ran[:3] == ["declarations", "secrets", "validation"]
    assert "callbacks" in ran  # both accept callbacks
    assert ("sync_errors" in ran) == adapter.supports_background_sync


# --- printing_partner's sync against the fake partner, one error mapping at a time ---------------


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (401, CredentialsRejected),
        (403, CredentialsRejected),
        (500, PartnerUnavailable),
        (502, PartnerUnavailable),
        (503, PartnerUnavailable),
        (504, PartnerUnavailable),
        (httpx.ConnectTimeout, PartnerUnavailable),
        (httpx.ReadTimeout, PartnerUnavailable),
        (httpx.ConnectError("[Errno 111] Connection refused"), PartnerUnavailable),
        (Reply(200, text="<html>down for maintenance</html>"), PartnerUnavailable),
        (Reply(200, ["not", "an", "object"]), PartnerUnavailable),
        (404, DriftDetected),
    ],
    ids=[
        "401",
        "403",
        "500",
        "502",
        "503",
        "504",
        "connect-timeout",
        "read-timeout",
        "refused",
        "not-json",
        "json-list",
        "404",
    ],
)
def test_printing_partner_maps_each_partner_failure(answer: Any, error: type[Exception]) -> None:
    partner = FakePartner.always(answer)
    with pytest.raises(error) as caught:
        run_sync(PrintingPartnerAdapter, config=CONFIG, secrets=SECRETS, partner=partner)
    assert len(partner.requests) == 1, "it stops at the first failure and leaves retries to the framework"
    assert SECRETS["api_key"] not in str(caught.value)
    assert str(caught.value)  # a message for the health reasons


def test_a_failure_on_the_second_request_is_mapped_too() -> None:
    partner = printer(orders=Reply(503, {"error": "busy"}))
    with pytest.raises(PartnerUnavailable, match="HTTP 503"):
        run_sync(PrintingPartnerAdapter, config=CONFIG, secrets=SECRETS, partner=partner)
    assert [r.url.path for r in partner.requests] == [
        "/api/accounts/acct-123",
        "/api/accounts/acct-123/orders",
    ]


def test_an_order_list_of_the_wrong_shape_is_partner_unavailable() -> None:
    partner = printer(orders={"orders": "many"})
    with pytest.raises(PartnerUnavailable, match="expected format"):
        run_sync(PrintingPartnerAdapter, config=CONFIG, secrets=SECRETS, partner=partner)


def test_printing_partner_sync_stores_orders_and_sends_the_key() -> None:
    partner = printer()
    result = run_sync(PrintingPartnerAdapter, config=CONFIG, secrets=SECRETS, partner=partner)
    assert records_by_id(result) == {"ord-1": ORDER}
    assert [r.kind for r in result.records] == ["print_order"]
    assert list(result.drift) == []
    assert {r.headers["authorization"] for r in partner.requests} == {"Bearer pk_live_ABCDEFGHIJKLMNOP"}
    assert "updated_since" not in partner.requested("/orders")[0].url.params


def test_incremental_sync_sends_updated_since() -> None:
    partner = printer(orders={"orders": []})
    since = datetime(2026, 11, 25, 18, 0, 5, tzinfo=UTC)
    result = run_sync(
        PrintingPartnerAdapter, config=CONFIG, secrets=SECRETS, partner=partner, last_success_at=since
    )
    assert result.records == []
    assert partner.requested("/orders")[0].url.params["updated_since"] == "2026-11-25T18:00:05Z"


@pytest.mark.parametrize(
    ("account", "reason"),
    [
        ({"account_id": "acct-123", "status": "suspended"}, "suspended"),
        ({"account_id": "someone-else", "status": "active"}, "someone-else"),
    ],
)
def test_account_drift_is_reported_and_records_still_count(account: dict[str, str], reason: str) -> None:
    result = run_sync(
        PrintingPartnerAdapter, config=CONFIG, secrets=SECRETS, partner=printer(account=account)
    )
    assert len(result.drift) == 1
    assert reason in result.drift[0]
    assert list(records_by_id(result)) == ["ord-1"]


def test_a_key_that_expires_between_syncs_is_credentials_rejected() -> None:
    partner = FakePartner(
        {ACCOUNT: Replies({"account_id": "acct-123", "status": "active"}, 401), ORDERS: {"orders": []}}
    )
    run_sync(PrintingPartnerAdapter, config=CONFIG, secrets=SECRETS, partner=partner)
    with pytest.raises(CredentialsRejected):
        run_sync(PrintingPartnerAdapter, config=CONFIG, secrets=SECRETS, partner=partner)


def test_printing_partner_callback_maps_and_rejects() -> None:
    result = run_callback(PrintingPartnerAdapter, CALLBACK)
    assert records_by_id(result)["ord-1"]["tracking_number"] == "TRK-9"
    with pytest.raises(CallbackRejected) as caught:
        run_callback(PrintingPartnerAdapter, {**CALLBACK, "occurred_at": "yesterday", "extra": 1})
    assert {(i.field, i.code) for i in caught.value.fields} == {
        ("payload.occurred_at", "invalid_format"),
        ("payload.extra", "unexpected"),
    }


def test_venue_ops_callback_needs_an_event_of_the_occasion() -> None:
    payload = VENUE_CALLBACK
    assert records_by_id(run_callback(VenueOpsAdapter, payload, events=["evt_1"])) == {
        "evt_1": {"event_id": "evt_1", "room": "Hall A"}
    }
    with pytest.raises(CallbackRejected) as caught:
        run_callback(VenueOpsAdapter, payload, events=["evt_2"])
    assert [(i.field, i.code) for i in caught.value.fields] == [("payload.event_id", "unknown_event")]
