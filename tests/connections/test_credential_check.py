"""The live credential check: ``POST …/connections/{id}/check`` against the partner simulator.

Outcomes (ok, rejected, drift, partner down, crashing adapter), what each does to health and the
activity log, the 409s, drafts, a paused schedule, and that no secret leaves in the answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.conftest import Api, assert_error
from tests.support.sync import Made, Sim, activity_of, connection, make_connection, simulator
from tovplus.db.models import Connection, WebhookDelivery
from tovplus.db.types import utcnow
from tovplus.errors import PartnerUnavailable
from tovplus.integrations.adapters.printing_partner import PrintingPartnerAdapter
from tovplus.integrations.contract import CheckContext, CheckResult
from tovplus.partner_sim import DEMO_ACCOUNT_ID, DEMO_API_KEY
from tovplus.runtime import Runtime
from tovplus.services import connections, webhooks
from tovplus.services.connections import CHECK_REASON_PREFIX, ConnectionPatch

WRONG_KEY = "pk_live_WRONGWRONGWRONG42"


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator() as s:
        yield s


def _check(client: TestClient, made: Made) -> Any:
    url = f"/v1/occasions/{made.occasion_id}/integrations/connections/{made.connection_id}/check"
    return client.post(url, headers=Api.auth(made.token))


def _ok(client: TestClient, made: Made) -> dict[str, Any]:
    r = _check(client, made)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"check"}
    assert set(body["check"]) == {"ok", "checked_at", "problems", "summary"}
    assert body["check"]["checked_at"].endswith("Z")
    return dict(body["check"])


def _view(client: TestClient, made: Made) -> dict[str, Any]:
    url = f"/v1/occasions/{made.occasion_id}/integrations/connections/{made.connection_id}"
    r = client.get(url, headers=Api.auth(made.token))
    assert r.status_code == 200, r.text
    return dict(r.json()["connection"])


def _no_secret(*texts: Any) -> None:
    for text in texts:
        dumped = text if isinstance(text, str) else json.dumps(text, default=str)
        assert DEMO_API_KEY not in dumped
        assert WRONG_KEY not in dumped


def test_working_credentials_pass_and_are_recorded(client: TestClient, runtime: Runtime, sim: Sim) -> None:
    made = make_connection(runtime, sim.url)
    result = _ok(client, made)
    assert result["ok"] is True
    assert result["problems"] == []
    assert result["summary"] == f"signed in as printer account {DEMO_ACCOUNT_ID}"
    [entry] = activity_of(runtime, made.connection_id, "connection.checked")
    assert entry.summary == f"Connection test passed: signed in as printer account {DEMO_ACCOUNT_ID}"
    assert entry.details["ok"] is True
    assert entry.actor == made.caller.subject_id
    _no_secret(result, entry.summary, entry.details)
    # a check is not a sync: nothing was stored but the outcome
    assert connection(runtime, made.connection_id).last_sync_at is None


def test_rejected_credentials_make_it_failing_and_a_passing_check_clears_that(
    client: TestClient, runtime: Runtime, sim: Sim
) -> None:
    made = make_connection(runtime, sim.url, api_key=WRONG_KEY)
    result = _ok(client, made)
    assert result["ok"] is False
    assert result["problems"] == [
        "The printer rejected the API key: enter a current API key for this connection."
    ]
    view = _view(client, made)
    assert view["health"] == "failing"
    assert view["health_reasons"] == [CHECK_REASON_PREFIX + result["problems"][0]]
    [entry] = activity_of(runtime, made.connection_id, "connection.checked")
    assert entry.summary.startswith("Connection test failed: The printer rejected the API key")
    assert entry.details["health"] == "failing"
    _no_secret(result, view, entry.summary, entry.details)

    connections.update_connection(
        runtime,
        made.caller,
        made.occasion_id,
        made.connection_id,
        ConnectionPatch(secrets={"api_key": DEMO_API_KEY}),
    )
    passed = _ok(client, made)
    assert (passed["ok"], passed["problems"]) == (True, [])
    view = _view(client, made)
    assert view["health"] == "healthy"
    assert view["health_reasons"] == []


def test_an_unknown_account_is_drift(client: TestClient, runtime: Runtime, sim: Sim) -> None:
    made = make_connection(runtime, sim.url, account_id="nobody-here")
    result = _ok(client, made)
    assert result["ok"] is False
    assert result["problems"] == [
        "The printer reports account 'nobody-here' not found: check the Account ID."
    ]
    view = _view(client, made)
    assert view["health"] == "degraded"
    assert view["health_reasons"] == [CHECK_REASON_PREFIX + result["problems"][0]]


def test_a_suspended_account_is_drift_too(client: TestClient, runtime: Runtime, sim: Sim) -> None:
    made = make_connection(runtime, sim.url)
    sim.control("suspended", times=1)
    result = _ok(client, made)
    assert result["ok"] is False
    assert "not active" in result["problems"][0]
    assert _view(client, made)["health"] == "degraded"


def test_drift_does_not_soften_a_syncs_failing_verdict(
    client: TestClient, runtime: Runtime, sim: Sim
) -> None:
    made = make_connection(runtime, sim.url, account_id="nobody-here")
    with runtime.db.write() as session:
        session.execute(
            update(Connection)
            .where(Connection.id == made.connection_id)
            .values(sync_health="failing", sync_health_reasons=["The last sync failed."], health="failing")
        )
    assert _ok(client, made)["ok"] is False
    row = connection(runtime, made.connection_id)
    assert row.sync_health == "failing"
    assert row.sync_health_reasons[-1] == "The last sync failed."


def test_a_partner_that_cannot_answer_leaves_health_alone(
    client: TestClient, runtime: Runtime, sim: Sim
) -> None:
    made = make_connection(runtime, sim.url)
    before = _view(client, made)
    sim.control("error500", times=1)
    result = _ok(client, made)
    assert (result["ok"], result["problems"], result["summary"]) == (
        False,
        ["The printer answered HTTP 500."],
        "",
    )
    after = _view(client, made)
    assert (after["health"], after["health_reasons"]) == (before["health"], before["health_reasons"])
    [entry] = activity_of(runtime, made.connection_id, "connection.checked")
    assert entry.details["outcome"] == "unknown"


def test_a_crashing_adapter_check_is_a_failed_check_not_a_500(
    client: TestClient,
    runtime: Runtime,
    sim: Sim,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(self: PrintingPartnerAdapter, ctx: CheckContext) -> CheckResult:
        raise RuntimeError("adapter bug")

    monkeypatch.setattr(PrintingPartnerAdapter, "check", boom)
    made = make_connection(runtime, sim.url)
    with caplog.at_level(logging.ERROR):
        result = _ok(client, made)
    assert result["ok"] is False
    assert result["problems"] == ["The integration's check failed unexpectedly."]
    assert any("crashed during its credential check" in r.getMessage() for r in caplog.records)
    assert _view(client, made)["health"] == "unknown"


def test_drafts_can_be_checked(client: TestClient, runtime: Runtime, sim: Sim) -> None:
    made = make_connection(runtime, sim.url, api_key=WRONG_KEY, state="draft")
    assert _ok(client, made)["ok"] is False
    view = _view(client, made)
    assert (view["state"], view["health"]) == ("draft", "unknown")  # drafts show no health
    # the verdict is kept for when it is enabled; a passing check takes it away again
    assert connection(runtime, made.connection_id).sync_health == "failing"
    connections.update_connection(
        runtime,
        made.caller,
        made.occasion_id,
        made.connection_id,
        ConnectionPatch(secrets={"api_key": DEMO_API_KEY}),
    )
    assert _ok(client, made)["ok"] is True
    row = connection(runtime, made.connection_id)
    assert (row.sync_health, row.sync_health_reasons) == ("healthy", [])


def test_a_passing_check_resumes_a_paused_schedule(client: TestClient, runtime: Runtime, sim: Sim) -> None:
    made = make_connection(runtime, sim.url)
    with runtime.db.write() as session:
        session.execute(
            update(Connection)
            .where(Connection.id == made.connection_id)
            .values(sync_paused_at=utcnow(), sync_failures_in_row=10, next_sync_at=None)
        )
    assert _ok(client, made)["ok"] is True
    row = connection(runtime, made.connection_id)
    assert row.sync_paused_at is None
    assert row.sync_failures_in_row == 0
    assert row.next_sync_at is not None


def test_a_failing_check_does_not_resume_a_paused_schedule(
    client: TestClient, runtime: Runtime, sim: Sim
) -> None:
    made = make_connection(runtime, sim.url, api_key=WRONG_KEY)
    with runtime.db.write() as session:
        session.execute(
            update(Connection).where(Connection.id == made.connection_id).values(sync_paused_at=utcnow())
        )
    assert _ok(client, made)["ok"] is False
    assert connection(runtime, made.connection_id).sync_paused_at is not None


def test_settings_changed_during_the_check_leave_health_alone(
    client: TestClient, runtime: Runtime, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make_connection(runtime, sim.url, api_key=WRONG_KEY)
    original = PrintingPartnerAdapter.check

    def edited_meanwhile(self: PrintingPartnerAdapter, ctx: CheckContext) -> CheckResult:
        connections.update_connection(
            runtime,
            made.caller,
            made.occasion_id,
            made.connection_id,
            ConnectionPatch(secrets={"api_key": DEMO_API_KEY}),
        )
        return original(self, ctx)

    monkeypatch.setattr(PrintingPartnerAdapter, "check", edited_meanwhile)
    assert _ok(client, made)["ok"] is False  # it judged the key it read
    row = connection(runtime, made.connection_id)
    assert row.sync_health != "failing"
    [entry] = activity_of(runtime, made.connection_id, "connection.checked")
    assert entry.details["judged_current_settings"] is False


def test_revoked_connections_and_adapters_without_a_check_are_409(
    client: TestClient, runtime: Runtime, api: Api, sim: Sim
) -> None:
    made = make_connection(runtime, sim.url)
    connections.update_connection(
        runtime, made.caller, made.occasion_id, made.connection_id, ConnectionPatch(state="revoked")
    )
    assert_error(_check(client, made), 409, "connection_revoked")
    r = api.connect(
        made.token,
        made.occasion_id,
        integration_key="venue_ops",
        config={"venue_id": "hall-1"},
        secrets={"api_token": "venue-token-123456"},
    )
    assert r.status_code == 201, r.text
    venue = Made(made.occasion_id, r.json()["connection"]["id"], made.token, made.caller)
    assert_error(_check(client, venue), 409, "check_not_supported")
    assert activity_of(runtime, venue.connection_id, "connection.checked") == []


def test_other_planners_and_unknown_ids_get_404(
    client: TestClient, runtime: Runtime, api: Api, sim: Sim
) -> None:
    made = make_connection(runtime, sim.url)
    stranger = Made(made.occasion_id, made.connection_id, api.user(), made.caller)
    assert_error(_check(client, stranger), 404)
    assert_error(
        _check(client, Made(made.occasion_id, "con_01zzzzzzzzzzzzzzzzzzzzzzzz", made.token, made.caller)), 404
    )
    assert_error(_check(client, Made(made.occasion_id, "x" * 300, made.token, made.caller)), 404)
    assert activity_of(runtime, made.connection_id, "connection.checked") == []


def test_the_check_is_in_the_openapi_schema_with_an_example(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/occasions/{occasion_id}/integrations/connections/{connection_id}/check"]["post"]
    content = op["responses"]["200"]["content"]["application/json"]
    assert "check" in json.dumps(content)


def test_printing_partner_check_against_the_simulator(sim: Sim) -> None:
    import httpx

    adapter = PrintingPartnerAdapter()

    def ctx(account_id: str, key: str, http: httpx.Client) -> CheckContext:
        return CheckContext(
            connection_id="con_x",
            occasion_id="occ_x",
            config={"account_id": account_id, "api_base_url": sim.url},
            secrets={"api_key": key},
            http=http,
            now=utcnow(),
        )

    with httpx.Client(timeout=5) as http:
        ok = adapter.check(ctx(DEMO_ACCOUNT_ID, DEMO_API_KEY, http))
        assert ok == CheckResult(summary=f"signed in as printer account {DEMO_ACCOUNT_ID}", drift=[])
        missing = adapter.check(ctx("nobody-here", DEMO_API_KEY, http))
        assert missing.drift
        assert "not found" in missing.drift[0]
        sim.control("mismatch", times=1)
        assert "instead of" in adapter.check(ctx(DEMO_ACCOUNT_ID, DEMO_API_KEY, http)).drift[0]
        from tovplus.errors import CredentialsRejected

        with pytest.raises(CredentialsRejected):
            adapter.check(ctx(DEMO_ACCOUNT_ID, WRONG_KEY, http))
        sim.control("forbidden", times=1)
        with pytest.raises(CredentialsRejected):
            adapter.check(ctx(DEMO_ACCOUNT_ID, DEMO_API_KEY, http))
        sim.control("error500", times=1)
        with pytest.raises(PartnerUnavailable):
            adapter.check(ctx(DEMO_ACCOUNT_ID, DEMO_API_KEY, http))
    assert adapter.supports_credential_check
    assert adapter.describe()["supports_credential_check"] is True


def test_health_moves_are_announced_as_integration_health_changed(
    client: TestClient, runtime: Runtime, sim: Sim
) -> None:
    made = make_connection(runtime, sim.url, api_key=WRONG_KEY)
    webhooks.create_endpoint(
        runtime,
        made.caller,
        made.occasion_id,
        url="http://127.0.0.1:9/hook",
        event_types=["integration.health_changed"],
    )
    _ok(client, made)
    _ok(client, made)  # the same verdict again: no second event
    connections.update_connection(
        runtime,
        made.caller,
        made.occasion_id,
        made.connection_id,
        ConnectionPatch(secrets={"api_key": DEMO_API_KEY}),
    )
    _ok(client, made)
    with runtime.db.read() as session:
        rows = session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.event_type == "integration.health_changed")
            .order_by(WebhookDelivery.id)
        ).all()
        events = [r.payload["data"] for r in rows]
    assert [(e["previous_health"], e["health"]) for e in events] == [
        ("unknown", "failing"),
        ("failing", "healthy"),
    ]
    assert events[0]["health_reasons"][0].startswith(CHECK_REASON_PREFIX)
    _no_secret(events)
