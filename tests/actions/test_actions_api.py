"""The actions API: run an action (202, idempotency 200), list and read runs, and every refusal."""

from __future__ import annotations

from typing import Any

from tests.actions.support import action_runs, auth, base, connected, received, run_all
from tests.conftest import assert_error
from tests.factories import guest
from tovplus.runtime import Runtime


def test_export_guests_runs_once_per_idempotency_key_and_the_partner_gets_the_guest_list(
    runtime: Runtime, client: Any
) -> None:
    with connected(runtime) as (sim, made):
        guest(runtime, made.caller, made.occasion_id, "Ola Nordmann")
        guest(runtime, made.caller, made.occasion_id, "Kari")
        body = {"input": {}, "idempotency_key": "click-1"}
        first = client.post(f"{base(made)}/actions/export_guests", json=body, headers=auth(made))
        assert first.status_code == 202, first.text
        run = first.json()["action_run"]
        assert run["state"] == "queued"
        assert run["trigger"] == f"user:{made.caller.user_id}"
        again = client.post(f"{base(made)}/actions/export_guests", json=body, headers=auth(made))
        assert again.status_code == 200
        assert again.json()["action_run"]["id"] == run["id"]
        assert [r.id for r in action_runs(runtime, made.connection_id)] == [run["id"]]

        (outcome,) = run_all(runtime)
        assert outcome.state == "succeeded"
        got = received(sim)
        assert got["effects"] == 1
        assert got["idempotency_keys"] == [run["id"]]
        names = [g["name"] for g in got["lists"]["demo-account"][made.occasion_id]["guests"]]
        assert names == ["Ola Nordmann", "Kari"]

        one = client.get(f"{base(made)}/action-runs/{run['id']}", headers=auth(made)).json()["action_run"]
        assert one["state"] == "succeeded"
        assert one["attempts"] == 1
        assert one["summary"] == "Sent 2 guests to the printer"
        assert one["finished_at"] is not None
        assert one["error"] is None
        listed = client.get(f"{base(made)}/action-runs", headers=auth(made)).json()
        assert [r["id"] for r in listed["action_runs"]] == [run["id"]]
        assert listed["next_cursor"] is None


def test_unknown_action_is_404_invalid_input_422_and_a_disabled_connection_409(
    runtime: Runtime, client: Any, api: Any
) -> None:
    with connected(runtime) as (_sim, made):
        url = f"{base(made)}/actions"
        assert_error(client.post(f"{url}/no_such_action", json={}, headers=auth(made)), 404)
        error = assert_error(
            client.post(f"{url}/export_guests", json={"input": {"extra": 1}}, headers=auth(made)), 422
        )
        assert [f["field"] for f in error["fields"]] == ["input.extra"]
        assert (
            api.patch(made.token, made.occasion_id, made.connection_id, state="disabled").status_code == 200
        )
        assert_error(
            client.post(f"{url}/export_guests", json={}, headers=auth(made)), 409, "connection_not_enabled"
        )
        assert action_runs(runtime, made.connection_id) == []
        other = api.user()
        assert_error(client.post(f"{url}/export_guests", json={}, headers=api.auth(other)), 404)
        assert_error(client.get(f"{base(made)}/action-runs/arun_nope", headers=auth(made)), 404)


def test_a_revoked_connection_queues_nothing_by_request_or_by_event(
    runtime: Runtime, client: Any, api: Any
) -> None:
    from tovplus.services import actions

    with connected(runtime) as (_sim, made):
        assert api.patch(made.token, made.occasion_id, made.connection_id, state="revoked").status_code == 200
        assert_error(client.post(f"{base(made)}/actions/export_guests", json={}, headers=auth(made)), 409)
        guest(runtime, made.caller, made.occasion_id, "Late guest")
        assert actions.dispatch_platform_events(runtime) == []
        assert action_runs(runtime, made.connection_id) == []


def test_export_without_guests_read_is_refused_and_not_subscribed(
    runtime: Runtime, client: Any, api: Any
) -> None:
    from tovplus.services import actions

    with connected(runtime) as (_sim, made):
        r = api.patch(made.token, made.occasion_id, made.connection_id, action_keys=["occasion.read"])
        assert r.status_code == 200, r.text
        error = assert_error(
            client.post(f"{base(made)}/actions/export_guests", json={}, headers=auth(made)), 409
        )
        assert error["code"] == "action_keys_missing"
        assert "guests.read" in error["message"]
        guest(runtime, made.caller, made.occasion_id, "Ola")
        assert actions.dispatch_platform_events(runtime) == []
        assert action_runs(runtime, made.connection_id) == []
