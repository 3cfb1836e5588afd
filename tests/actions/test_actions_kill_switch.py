"""Actions and the adapter kill switch; a final credential failure turns health ``failing``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests.actions.support import action_runs, auth, base, connected, guest_list_fault, received, run_all
from tests.conftest import Api, assert_error
from tests.factories import guest
from tests.support.sync import connection, kinds
from tovplus.db.models import Notice, WebhookDelivery, WebhookEndpoint
from tovplus.runtime import Runtime
from tovplus.services import actions

ADMIN = "/v1/admin/integrations/printing_partner"


def _suspend(api: Api, reason: str = "Printer partner sends garbage") -> None:
    r = api.client.post(f"{ADMIN}/suspend", json={"reason": reason}, headers=api.auth(api.user("admin")))
    assert r.status_code == 200, r.text
    assert r.json()["suspended"] >= 1


def _resume(api: Api) -> None:
    r = api.client.post(f"{ADMIN}/resume", headers=api.auth(api.user("admin")))
    assert r.status_code == 200, r.text


def test_a_suspended_connection_runs_no_action_and_resume_brings_actions_back(
    runtime: Runtime, client: Any, api: Api
) -> None:
    with connected(runtime) as (sim, made):
        guest(runtime, made.caller, made.occasion_id, "Ola")
        (queued_before,) = actions.dispatch_platform_events(runtime)  # queued before the switch
        _suspend(api)

        refused = client.post(f"{base(made)}/actions/export_guests", json={}, headers=auth(made))
        assert_error(refused, 409, "integration_suspended")
        guest(runtime, made.caller, made.occasion_id, "Kari")
        assert actions.dispatch_platform_events(runtime) == []  # no subscription runs while suspended
        (outcome,) = run_all(runtime)
        assert outcome.run_id == queued_before
        assert outcome.state == "failed"
        assert "suspended" in (outcome.error or "")
        assert received(sim)["effects"] == 0  # the partner was never called
        assert [r.id for r in action_runs(runtime, made.connection_id)] == [queued_before]
        assert connection(runtime, made.connection_id).health == "degraded"  # not made failing

        _resume(api)
        again = client.post(f"{base(made)}/actions/export_guests", json={}, headers=auth(made))
        assert again.status_code == 202, again.text
        (done,) = run_all(runtime)
        assert done.state == "succeeded"
        got = received(sim)
        assert got["effects"] == 1
        names = [g["name"] for g in got["lists"]["demo-account"][made.occasion_id]["guests"]]
        assert names == ["Ola", "Kari"]
        guest(runtime, made.caller, made.occasion_id, "Per")
        assert len(actions.dispatch_platform_events(runtime)) == 1  # subscriptions run again


def test_a_final_credential_failure_turns_health_failing_through_the_transitions(
    runtime: Runtime, client: Any
) -> None:
    with connected(runtime) as (sim, made):
        endpoint = client.post(
            f"/v1/occasions/{made.occasion_id}/webhook-endpoints",
            json={"url": "https://hooks.example.com/h", "event_types": ["integration.health_changed"]},
            headers=auth(made),
        )
        assert endpoint.status_code == 201, endpoint.text
        before = connection(runtime, made.connection_id).health
        assert before != "failing"
        guest(runtime, made.caller, made.occasion_id, "Ola")
        (run_id,) = actions.dispatch_platform_events(runtime)
        guest_list_fault(sim, "unauthorized")
        outcome = actions.execute_action_run(runtime, run_id, worker_id="w")
        assert outcome.state == "failed"

        row = connection(runtime, made.connection_id)
        assert row.health == "failing"
        (reason,) = row.health_reasons
        assert reason.startswith("Send guest list was refused by the partner")
        assert "Update the credentials of this connection" in reason
        assert "connection.health" not in kinds(runtime, made.connection_id)  # not a lifecycle entry
        assert "notice.failing" in kinds(runtime, made.connection_id)
        with runtime.db.read() as session:
            (notice,) = session.scalars(select(Notice).where(Notice.connection_id == made.connection_id))
            assert notice.kind == "connection.failing"
            assert "Update the credentials" in notice.summary
            endpoint_id = session.scalars(select(WebhookEndpoint.id)).one()
            changed = session.scalars(
                select(WebhookDelivery).where(
                    WebhookDelivery.endpoint_id == endpoint_id,
                    WebhookDelivery.event_type == "integration.health_changed",
                )
            ).all()
        assert len(changed) == 1
        data = changed[0].payload["data"]
        assert (data["previous_health"], data["health"]) == (before, "failing")
        assert data["health_reasons"] == [reason]
        assert changed[0].id in outcome.delivery_ids  # dispatched after the finishing commit
