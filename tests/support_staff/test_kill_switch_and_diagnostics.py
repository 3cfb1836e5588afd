"""Support: the adapter kill switch, the diagnostics download, the "Needs attention" notices."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from tests.callbacks.test_callbacks import Conn, make_conn, order
from tests.conftest import Api, assert_error
from tests.security.test_secret_leaks import leaks_in
from tovplus.db.models import Connection, SyncRun
from tovplus.db.types import utcnow
from tovplus.runtime import Runtime
from tovplus.services import notifications
from tovplus.services.sync import scheduler

ADMIN = "/v1/admin/integrations"


def queued_runs(rt: Runtime, connection_id: str) -> int:
    with rt.db.read() as s:
        return int(
            s.scalar(select(func.count()).select_from(SyncRun).where(SyncRun.connection_id == connection_id))
            or 0
        )


def make_due(rt: Runtime, *ids: str) -> None:
    with rt.db.write() as s:
        s.execute(
            update(Connection)
            .where(Connection.id.in_(ids))
            .values(next_sync_at=utcnow() - timedelta(minutes=1))
        )


def connection(api: Api, c: Conn) -> dict[str, Any]:
    r = api.client.get(
        f"/v1/occasions/{c.occasion_id}/integrations/connections/{c.id}", headers=api.auth(c.token)
    )
    assert r.status_code == 200, r.text
    return dict(r.json()["connection"])


def test_suspend_stops_callbacks_and_syncs_and_resume_brings_back_exactly_those(api: Api, runtime: Runtime):
    a, b = make_conn(api), make_conn(api)
    disabled = make_conn(api)
    assert disabled.patch(state="disabled").status_code == 200
    admin = api.auth(api.user("admin"))
    planner_try = api.client.post(
        f"{ADMIN}/printing_partner/suspend", json={"reason": "x"}, headers=api.auth(a.token)
    )
    assert_error(planner_try, 403)
    assert_error(
        api.client.post(f"{ADMIN}/printing_partner/suspend", json={"reason": " "}, headers=admin), 422
    )
    assert_error(api.client.post(f"{ADMIN}/nope/suspend", json={"reason": "x"}, headers=admin), 404)

    r = api.client.post(
        f"{ADMIN}/printing_partner/suspend", json={"reason": "Partner sends garbage"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"suspended": 2}
    refused = a.post(order())
    assert_error(refused, 409, "integration_suspended")
    view = connection(api, a)
    assert view["health"] == "degraded"
    assert view["health_reasons"] == ["Suspended by an administrator: Partner sends garbage"]
    assert view["state"] == "enabled"
    make_due(runtime, a.id, b.id)
    assert scheduler.tick(runtime).run_ids == []
    sync_now = api.client.post(
        f"/v1/occasions/{a.occasion_id}/integrations/connections/{a.id}/sync", headers=api.auth(a.token)
    )
    assert_error(sync_now, 409, "integration_suspended")
    assert queued_runs(runtime, a.id) == 0
    assert [e["kind"] for e in a.activity("connection.suspended")] == ["connection.suspended"]
    # suspending again changes nothing
    again = api.client.post(f"{ADMIN}/printing_partner/suspend", json={"reason": "still"}, headers=admin)
    assert again.json() == {"suspended": 0}

    r = api.client.post(f"{ADMIN}/printing_partner/resume", headers=admin)
    assert r.json() == {"resumed": 2}
    assert a.post(order()).status_code == 202
    assert connection(api, a)["health"] != "degraded"
    assert connection(api, disabled)["state"] == "disabled"  # never suspended, not touched
    ticked = scheduler.tick(runtime)
    assert len(ticked.run_ids) == 2
    assert [e["kind"] for e in b.activity("connection.resumed")] == ["connection.resumed"]
    assert api.client.post(f"{ADMIN}/printing_partner/resume", headers=admin).json() == {"resumed": 0}


def test_a_queued_run_of_a_suspended_connection_is_not_run(api: Api, runtime: Runtime):
    a = make_conn(api)
    make_due(runtime, a.id)
    [run_id] = scheduler.tick(runtime).run_ids
    admin = api.auth(api.user("admin"))
    api.client.post(f"{ADMIN}/printing_partner/suspend", json={"reason": "stop"}, headers=admin)
    from tovplus.services.sync import claim_run

    outcome = claim_run(runtime, run_id, "w1")
    assert getattr(outcome, "error", None) == "integration suspended"


def test_diagnostics_hold_what_support_needs_and_no_secret(api: Api, runtime: Runtime):
    secret = "pk_live_DiagnosticsSecret0123456789"
    c = make_conn(api, secrets={"api_key": secret})
    assert c.post(order()).status_code == 202
    r = api.client.get(
        f"/v1/occasions/{c.occasion_id}/integrations/connections/{c.id}/diagnostics",
        headers=api.auth(c.token),
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"].startswith("attachment;")
    doc = r.json()
    assert set(doc) >= {
        "adapter",
        "connection",
        "sync_runs",
        "action_runs",
        "activity",
        "webhook_deliveries",
        "settings",
    }
    assert doc["adapter"]["integration_key"] == "printing_partner"
    assert doc["adapter"]["contract_version"] == 1
    assert doc["adapter"]["package_version"]
    assert doc["connection"]["id"] == c.id
    assert doc["settings"]["sync_retry_delays"]
    assert any(
        e["kind"] == "callback.accepted" or e["kind"].startswith("connection.") for e in doc["activity"]
    )
    needles = {"api_key": secret, "issued key": c.key, "key secret part": c.key.split("_", 2)[2]}
    assert leaks_in(r.text, needles) == []
    assert leaks_in(str(r.headers), needles) == []


def test_a_planner_cannot_download_another_occasions_diagnostics(api: Api):
    c = make_conn(api)
    other = api.auth(api.user("planner"))
    path = f"/v1/occasions/{c.occasion_id}/integrations/connections/{c.id}/diagnostics"
    assert_error(api.client.get(path, headers=other), 404)
    admin = api.auth(api.user("admin"))
    assert api.client.get(path, headers=admin).status_code == 200


def test_failing_makes_a_notice_recovery_clears_it_and_dismiss_works(api: Api, runtime: Runtime):
    c = make_conn(api)
    change = notifications.HealthChange(
        c.occasion_id, c.id, "printing_partner", "healthy", "failing", ("401",)
    )
    with runtime.db.write() as s:
        notifications.health_changed(s, change, name="Printing")
    h = api.auth(c.token)
    [notice] = api.client.get(f"/v1/occasions/{c.occasion_id}/notices", headers=h).json()["notices"]
    assert notice["kind"] == "connection.failing"
    assert "needs attention" in notice["summary"]
    with runtime.db.write() as s:
        notifications.health_changed(
            s, notifications.HealthChange(c.occasion_id, c.id, "printing_partner", "failing", "healthy")
        )
    [recovered] = api.client.get(f"/v1/occasions/{c.occasion_id}/notices", headers=h).json()["notices"]
    assert (recovered["kind"], recovered["resolved"]) == ("connection.recovered", True)
    feed = api.client.get(f"{ADMIN}/activity", headers=api.auth(api.user("admin"))).json()["activity"]
    assert {"notice.failing", "notice.recovered"} <= {e["kind"] for e in feed}
    other = api.auth(api.user("planner"))
    assert_error(
        api.client.post(f"/v1/occasions/{c.occasion_id}/notices/{recovered['id']}/dismiss", headers=other),
        404,
    )
    r = api.client.post(f"/v1/occasions/{c.occasion_id}/notices/{recovered['id']}/dismiss", headers=h)
    assert r.status_code == 204
    assert api.client.get(f"/v1/occasions/{c.occasion_id}/notices", headers=h).json()["notices"] == []
    # a change that is neither failing nor recovering makes no notice
    with runtime.db.write() as s:
        notifications.health_changed(
            s, notifications.HealthChange(c.occasion_id, c.id, "printing_partner", "healthy", "degraded")
        )
    assert api.client.get(f"/v1/occasions/{c.occasion_id}/notices", headers=h).json()["notices"] == []
    assert json.dumps(notice)  # plain JSON
