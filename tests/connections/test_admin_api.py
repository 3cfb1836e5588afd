"""Admin routes: the platform-wide connection list, its summary, and the activity feed."""

from __future__ import annotations

from sqlalchemy import select, update

from tests.conftest import Api, assert_error
from tovplus.db.models import Activity, Connection

VENUE = {
    "integration_key": "venue_ops",
    "config": {"venue_id": "hall-7"},
    "secrets": {"api_token": "venue-token-0123456789"},
}


def build(api: Api) -> dict:
    """Two occasions with connections in every state; sync verdicts written as the worker does."""
    p1, p2 = api.user("planner"), api.user("planner")
    o1, o2 = api.occasion(p1), api.occasion(p2)
    ids: dict[str, str] = {}

    def create(name: str, token: str, occasion: str, **body) -> str:
        r = api.connect(token, occasion, **body)
        assert r.status_code == 201, r.text
        ids[name] = r.json()["connection"]["id"]
        return ids[name]

    create("draft1", p1, o1)
    create("enabled1", p1, o1, state="enabled")
    api.patch(p1, o1, create("disabled1", p1, o1, state="enabled"), state="disabled")
    api.patch(p1, o1, create("revoked1", p1, o1), state="revoked")
    create("venue_enabled2", p2, o2, state="enabled", **VENUE)
    create("failing2", p2, o2, state="enabled")
    create("venue_draft2", p2, o2, **VENUE)
    with api.runtime.db.write() as s:
        s.execute(
            update(Connection)
            .where(Connection.id == ids["failing2"])
            .values(
                health="failing",
                health_reasons=["The printer refused the API key."],
                sync_health="failing",
                sync_health_reasons=["The printer refused the API key."],
            )
        )
        s.execute(
            update(Connection)
            .where(Connection.id == ids["enabled1"])
            .values(health="healthy", sync_health="healthy")
        )
    return {"p1": p1, "p2": p2, "o1": o1, "o2": o2, "ids": ids, "admin": api.user("admin")}


def listing(api: Api, admin: str, **params) -> dict:
    r = api.client.get("/v1/admin/integrations", params=params, headers=api.auth(admin))
    assert r.status_code == 200, r.text
    return r.json()


def test_admin_list_filters_and_summary(api):
    w = build(api)
    ids, admin = w["ids"], w["admin"]
    everything = listing(api, admin)
    assert [c["id"] for c in everything["connections"]] == sorted(ids.values(), reverse=True)
    assert everything["next_cursor"] is None
    summary = everything["summary"]
    assert summary["total"] == 7
    assert summary["by_state"] == {"draft": 2, "enabled": 3, "disabled": 1, "revoked": 1}
    assert summary["by_health"] == {"unknown": 5, "healthy": 1, "degraded": 0, "failing": 1}
    assert summary["failing"] == 1

    def found(**params) -> set[str]:
        body = listing(api, admin, **params)
        assert body["summary"]["total"] == len(body["connections"])
        return {c["id"] for c in body["connections"]}

    assert found(state="enabled") == {ids["enabled1"], ids["venue_enabled2"], ids["failing2"]}
    assert found(state="revoked") == {ids["revoked1"]}
    assert found(health="failing") == {ids["failing2"]}
    assert found(integration_key="venue_ops") == {ids["venue_enabled2"], ids["venue_draft2"]}
    assert found(occasion_id=w["o1"]) == {ids[k] for k in ("draft1", "enabled1", "disabled1", "revoked1")}
    assert found(occasion_id=w["o2"], state="draft") == {ids["venue_draft2"]}
    assert found(occasion_id=w["o1"], integration_key="venue_ops") == set()
    assert found(occasion_id="occ_doesnotexist") == set()
    assert found(integration_key="not_installed") == set()
    filtered = listing(api, admin, occasion_id=w["o2"])["summary"]
    assert filtered["failing"] == 1
    assert filtered["by_state"]["enabled"] == 2

    failing = listing(api, admin, health="failing")["connections"][0]
    assert failing["health_reasons"] == ["The printer refused the API key."]
    for c in everything["connections"]:
        assert "issued_key" not in c
        assert set(c["principal"]) >= {"principal_type", "subject_id", "key_id", "key_last_used_at"}


def test_admin_list_pages_with_cursors(api):
    w = build(api)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = listing(api, w["admin"], **params)
        assert len(body["connections"]) <= 3
        assert body["summary"]["total"] == 7  # counts cover the filtered set, not the page
        seen += [c["id"] for c in body["connections"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(w["ids"].values(), reverse=True)
    body = listing(api, w["admin"], state="enabled", limit=2)
    rest = listing(api, w["admin"], state="enabled", limit=2, cursor=body["next_cursor"])
    assert len(body["connections"]) == 2
    assert len(rest["connections"]) == 1
    assert rest["next_cursor"] is None


def test_admin_routes_are_for_admins_only(api):
    w = build(api)
    key = api.connect(w["p1"], w["o1"], state="enabled").json()["issued_key"]
    for path in ("/v1/admin/integrations", "/v1/admin/integrations/activity"):
        assert_error(api.client.get(path), 401, "unauthenticated")
        assert_error(api.client.get(path, headers=api.auth("tovu_notatoken")), 401)
        for token in (w["p1"], w["p2"], key):
            assert_error(api.client.get(path, headers=api.auth(token)), 403, "forbidden")
            # a non-admin is told 403 whatever the query says
            assert_error(api.client.get(path + "?limit=0&state=bogus", headers=api.auth(token)), 403)


def test_blank_query_values_mean_no_filter(api):
    w = build(api)
    body = listing(
        api, w["admin"], state="", health="", integration_key="", occasion_id="", limit="", cursor=""
    )
    assert body["summary"]["total"] == 7
    r = api.client.get("/v1/admin/integrations/activity?kind=&limit=&cursor=", headers=api.auth(w["admin"]))
    assert r.status_code == 200, r.text
    r = api.client.get(
        f"/v1/occasions/{w['o1']}/integrations/activity?connection_id=&limit=", headers=api.auth(w["p1"])
    )
    assert r.status_code == 200, r.text
    assert r.json()["activity"]


def test_admin_bad_filters_are_422(api):
    admin = api.user("admin")
    for query in (
        "state=bogus",
        "health=bogus",
        "limit=0",
        "limit=201",
        "limit=x",
        "cursor=bad",
        "integration_key=%00",
        "occasion_id=a%20b",
    ):
        assert_error(api.client.get(f"/v1/admin/integrations?{query}", headers=api.auth(admin)), 422)
    for query in ("kind=%00", "kind=A+B", "limit=0", "cursor=%2F%2F"):
        assert_error(api.client.get(f"/v1/admin/integrations/activity?{query}", headers=api.auth(admin)), 422)


def test_admin_activity_feed_pages_and_filters_by_kind(api):
    w = build(api)
    admin = w["admin"]
    with api.runtime.db.read() as s:
        all_ids = s.scalars(select(Activity.id).order_by(Activity.id.desc())).all()
        enabled_ids = s.scalars(
            select(Activity.id).where(Activity.kind == "connection.enabled").order_by(Activity.id.desc())
        ).all()
    assert len(all_ids) > 10
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        r = api.client.get("/v1/admin/integrations/activity", params=params, headers=api.auth(admin))
        assert r.status_code == 200, r.text
        seen += [a["id"] for a in r.json()["activity"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == all_ids
    r = api.client.get(
        "/v1/admin/integrations/activity", params={"kind": "connection.enabled"}, headers=api.auth(admin)
    )
    entries = r.json()["activity"]
    assert [a["id"] for a in entries] == enabled_ids
    assert {a["kind"] for a in entries} == {"connection.enabled"}
    assert {a["occasion_id"] for a in entries} == {w["o1"], w["o2"]}
    r = api.client.get(
        "/v1/admin/integrations/activity", params={"kind": "no.such.kind"}, headers=api.auth(admin)
    )
    assert r.json() == {"activity": [], "next_cursor": None}
