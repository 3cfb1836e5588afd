"""The start of ``serve`` refreshes stored health: a suspended connection keeps its suspension."""

from __future__ import annotations

from tests.callbacks.test_callbacks import make_conn
from tests.conftest import Api
from tests.support.sync import connection
from tovplus.runtime import Runtime
from tovplus.services.connections import refresh_health

ADMIN = "/v1/admin/integrations/printing_partner"
REASON = "Suspended by an administrator: Partner sends garbage"


def test_refreshing_health_at_start_keeps_a_suspended_connections_health_and_reason(
    api: Api, runtime: Runtime
) -> None:
    a = make_conn(api)
    admin = api.auth(api.user("admin"))
    r = api.client.post(f"{ADMIN}/suspend", json={"reason": "Partner sends garbage"}, headers=admin)
    assert r.json() == {"suspended": 1}
    before = connection(runtime, a.id)
    assert (before.health, before.health_reasons) == ("degraded", [REASON])

    refresh_health(runtime)  # what `serve` (prepared_runtime) does at start

    after = connection(runtime, a.id)
    assert after.health == "degraded"
    assert after.health_reasons[0] == REASON
    assert after.suspended_at is not None
    # and resume still judges it afresh
    assert api.client.post(f"{ADMIN}/resume", headers=admin).json() == {"resumed": 1}
    assert connection(runtime, a.id).health != "degraded"


def test_the_admin_pages_kill_switch_forms_need_csrf_and_an_admin(api: Api, runtime: Runtime) -> None:
    from tests.support.web import WebUser, person

    a = make_conn(api)
    admin, planner = WebUser(api.client, person(runtime, "admin")), WebUser(api.client, person(runtime))
    url = "/admin/integrations/printing_partner/suspend"
    forged = admin.post(url, {"reason": "x"}, csrf="not-the-token")
    assert forged.status_code in (400, 403)
    assert planner.post(url, {"reason": "x"}).status_code == 403
    assert connection(runtime, a.id).suspended_at is None
    unknown = admin.post("/admin/integrations/nope/suspend", {"reason": "x"})
    assert unknown.status_code == 404
    done = admin.post(url, {"reason": "Partner sends garbage"})
    assert "1 connection suspended" in admin.follow(done).text
    assert connection(runtime, a.id).suspended_reason == "Partner sends garbage"
