"""A connection's label (API create and patch) and the admin list's search, occasion search and sort."""

from __future__ import annotations

from sqlalchemy import update

from tests.conftest import Api, assert_error
from tovplus.db.models import Activity, Connection

VENUE = {
    "integration_key": "venue_ops",
    "config": {"venue_id": "hall-7-kyiv"},
    "secrets": {"api_token": "venue-token-0123456789"},
}


def _admin_list(api: Api, admin: str, **params: str) -> dict:
    r = api.client.get("/v1/admin/integrations", params=params, headers=api.auth(admin))
    assert r.status_code == 200, r.text
    return r.json()


def test_label_set_on_create_changed_and_removed_by_patch(api: Api) -> None:
    planner = api.user()
    occ = api.occasion(planner)
    r = api.connect(planner, occ, label="  Invitations   — Kyiv shop ")
    assert r.status_code == 201, r.text
    conn = r.json()["connection"]
    assert conn["label"] == "Invitations — Kyiv shop"
    assert api.patch(planner, occ, conn["id"], label="Menus").json()["connection"]["label"] == "Menus"
    # a PATCH without the label keeps it
    kept = api.patch(planner, occ, conn["id"], config={"account_id": "acct-999"}).json()["connection"]
    assert kept["label"] == "Menus"
    assert api.patch(planner, occ, conn["id"], label=None).json()["connection"]["label"] is None
    with api.runtime.db.read() as s:
        kinds = [a.kind for a in s.query(Activity).where(Activity.connection_id == conn["id"])]
    assert kinds.count("connection.updated") == 3


def test_label_only_patch_keeps_the_sync_verdict(api: Api) -> None:
    planner = api.user()
    occ = api.occasion(planner)
    conn_id = api.connect(planner, occ, state="enabled").json()["connection"]["id"]
    with api.runtime.db.write() as s:
        s.execute(
            update(Connection).where(Connection.id == conn_id).values(health="healthy", sync_health="healthy")
        )
    after = api.patch(planner, occ, conn_id, label="Menus").json()["connection"]
    assert after["health"] == "healthy"


def test_bad_labels_are_422_and_change_nothing(api: Api) -> None:
    planner = api.user()
    occ = api.occasion(planner)
    conn_id = api.connect(planner, occ, label="Keep").json()["connection"]["id"]
    err = assert_error(api.patch(planner, occ, conn_id, label="x" * 81), 422)
    assert err["fields"][0]["field"] == "label"
    assert err["fields"][0]["code"] == "too_long"
    err = assert_error(api.patch(planner, occ, conn_id, label="bad\u200bzero"), 422)
    assert err["fields"][0]["code"] == "invalid"
    assert_error(api.patch(planner, occ, conn_id, label=7), 422)
    assert_error(api.connect(planner, occ, label="y" * 81), 422)
    got = api.client.get(
        f"/v1/occasions/{occ}/integrations/connections/{conn_id}", headers=api.auth(planner)
    ).json()["connection"]
    assert got["label"] == "Keep"


def _platform(api: Api) -> dict:
    p1 = api.user("planner", email="olena.koval@example.com")
    p2 = api.user("planner", email="someone.else@example.com")
    o1 = api.occasion(p1, name="Koval wedding")
    o2 = api.occasion(p2, name="Company retreat")
    ids = {
        "menus": api.connect(p1, o1, label="Menus and cards").json()["connection"]["id"],
        "plain": api.connect(
            p2, o2, config={"account_id": "acct-special_77", "api_base_url": "https://p.example.com"}
        ).json()["connection"]["id"],
        "venue": api.connect(p2, o2, **VENUE).json()["connection"]["id"],
    }
    with api.runtime.db.write() as s:
        s.execute(update(Connection).where(Connection.id == ids["venue"]).values(health="failing"))
        s.execute(update(Connection).where(Connection.id == ids["plain"]).values(health="healthy"))
    return {"ids": ids, "o1": o1, "o2": o2, "admin": api.user("admin")}


def test_admin_search_finds_by_label_account_email_and_id(api: Api) -> None:
    world = _platform(api)
    ids, admin = world["ids"], world["admin"]

    def found(**params: str) -> set[str]:
        return {c["id"] for c in _admin_list(api, admin, **params)["connections"]}

    assert found(q="MENUS") == {ids["menus"]}
    assert found(q="special_77") == {ids["plain"]}
    assert found(q="hall-7-kyiv") == {ids["venue"]}
    assert found(q="olena.koval") == {ids["menus"]}
    assert found(q=ids["venue"]) == {ids["venue"]}
    # LIKE wildcards are plain text: "_" and "%" do not match everything
    assert found(q="%") == set()
    assert found(q="ll_7") == set()  # would match "hall-7" as a wildcard
    listing = _admin_list(api, admin, q="someone.else@")
    assert {c["id"] for c in listing["connections"]} == {ids["plain"], ids["venue"]}
    assert listing["summary"]["total"] == 2


def test_admin_occasion_search_by_name(api: Api) -> None:
    world = _platform(api)
    ids, admin = world["ids"], world["admin"]
    got = {c["id"] for c in _admin_list(api, admin, occasion="retreat")["connections"]}
    assert got == {ids["plain"], ids["venue"]}
    got = {c["id"] for c in _admin_list(api, admin, occasion=world["o1"])["connections"]}
    assert got == {ids["menus"]}
    assert _admin_list(api, admin, occasion="no such occasion")["connections"] == []


def test_admin_sort_worst_first_pages_by_offset(api: Api) -> None:
    world = _platform(api)
    ids, admin = world["ids"], world["admin"]
    first = _admin_list(api, admin, sort="health", limit="2")
    assert [c["id"] for c in first["connections"]] == [ids["venue"], ids["menus"]]
    second = _admin_list(api, admin, sort="health", limit="2", cursor=first["next_cursor"])
    assert [c["id"] for c in second["connections"]] == [ids["plain"]]
    assert second["next_cursor"] is None
    oldest = _admin_list(api, admin, sort="oldest")
    assert [c["id"] for c in oldest["connections"]] == [ids["menus"], ids["plain"], ids["venue"]]


def test_admin_search_bad_input_is_422(api: Api) -> None:
    admin = api.user("admin")
    headers = api.auth(admin)
    assert_error(api.client.get("/v1/admin/integrations", params={"sort": "price"}, headers=headers), 422)
    assert_error(api.client.get("/v1/admin/integrations", params={"q": "x" * 101}, headers=headers), 422)
    assert_error(
        api.client.get(
            "/v1/admin/integrations", params={"sort": "health", "cursor": "bogus"}, headers=headers
        ),
        422,
    )
