"""The planner lifecycle routes, one status code of the contract at a time.

Create (draft with errors, enabled, every 422, 403 for a planner's platform scope),
PATCH (every transition, merges, the redacted placeholder, rotation, revocation),
the sync and records routes, and the activity those changes write.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import Api, assert_error
from tovplus.db.ids import new_id
from tovplus.db.models import (
    Activity,
    Connection,
    ConnectionSecret,
    Grant,
    IntegrationKey,
    IntegrationPrincipal,
    SyncedRecord,
    SyncRun,
)
from tovplus.db.types import utcnow
from tovplus.integrations.redaction import MASK
from tovplus.services.credentials import decrypt_connection_secrets

API_KEY = "pk_live_ABCDEFGHIJKLMNOP"
GOOD_CONFIG = {"account_id": "acct-123", "api_base_url": "https://printer.example.com/api"}
TABLES = (Connection, ConnectionSecret, IntegrationPrincipal, IntegrationKey, Grant, Activity)


def base(occasion_id: str) -> str:
    return f"/v1/occasions/{occasion_id}/integrations"


def counts(api: Api) -> dict[str, int]:
    with api.runtime.db.read() as s:
        return {t.__tablename__: s.scalar(select(func.count()).select_from(t)) or 0 for t in TABLES}


def stored_secrets(api: Api, connection_id: str) -> dict[str, str]:
    with api.runtime.db.read() as s:
        return decrypt_connection_secrets(s, api.runtime.keyring, connection_id)


def activity_kinds(api: Api, connection_id: str) -> list[tuple[str, str]]:
    with api.runtime.db.read() as s:
        rows = s.scalars(
            select(Activity).where(Activity.connection_id == connection_id).order_by(Activity.id)
        ).all()
        return [(a.kind, a.actor) for a in rows]


def user_id(api: Api, token: str) -> str:
    r = api.client.get("/v1/integrations/catalog", headers=api.auth(token))
    assert r.status_code == 200
    from tovplus.db.models import UserToken
    from tovplus.services.auth import sha256_hex

    with api.runtime.db.read() as s:
        tok = s.scalar(select(UserToken).where(UserToken.token_hash == sha256_hex(token)))
        assert tok is not None
        return tok.user_id


@pytest.fixture
def planner(api: Api) -> str:
    return api.user("planner")


@pytest.fixture
def occasion(api: Api, planner: str) -> str:
    return api.occasion(planner)


def make(api: Api, token: str, occasion_id: str, state: str) -> dict[str, Any]:
    """A printing connection in ``state`` (reached through the API)."""
    r = api.connect(token, occasion_id, state="enabled" if state in ("enabled", "disabled") else "draft")
    assert r.status_code == 201, r.text
    body = r.json()
    cid = body["connection"]["id"]
    if state in ("disabled", "revoked"):
        r = api.patch(token, occasion_id, cid, state=state)
        assert r.status_code == 200, r.text
    return {"id": cid, "key": body["issued_key"]}


# --- create ----------------------------------------------------------------------------------


def test_create_defaults_to_a_draft_with_occasion_scope_and_every_action_key(api, planner, occasion):
    r = api.connect(planner, occasion)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"connection", "issued_key"}
    c = body["connection"]
    assert c["state"] == "draft"
    assert c["occasion_id"] == occasion
    assert c["integration_key"] == "printing_partner"
    assert c["health"] == "unknown"
    assert c["health_reasons"] == []
    assert c["scope"] == {"type": "occasion", "occasion_id": occasion, "event_id": None}
    assert c["action_keys"] == ["occasion.read", "events.read", "guests.read"]
    assert c["config"] == GOOD_CONFIG
    assert c["redacted_secrets"] == {"api_key": MASK + API_KEY[-4:]}
    assert c["validation"] == {"errors": [], "warnings": []}
    assert c["principal"]["principal_type"] == "integration_principal"
    assert c["principal"]["subject_id"] == f"integration:{c['id']}"
    assert c["principal"]["key_last_used_at"] is None
    assert body["issued_key"].startswith(f"tov_{c['principal']['key_id']}_")
    assert [g["action_key"] for g in c["grants"]] == c["action_keys"]
    assert c["last_sync_at"] is None
    assert c["last_sync_status"] is None
    for stamp in (c["created_at"], c["updated_at"]):
        assert stamp.endswith("Z")
    assert activity_kinds(api, c["id"]) == [("connection.created", f"user:{user_id(api, planner)}")]


def test_a_draft_may_hold_validation_errors_and_lists_them(api, planner, occasion):
    before = counts(api)
    r = api.connect(planner, occasion, config={"account_id": "x"}, secrets={})
    assert r.status_code == 201, r.text
    c = r.json()["connection"]
    fields = {(e["field"], e["code"]) for e in c["validation"]["errors"]}
    assert fields == {
        ("config.account_id", "invalid_format"),
        ("config.api_base_url", "required"),
        ("secrets.api_key", "required"),
    }
    assert all(e["message"] for e in c["validation"]["errors"])
    assert c["redacted_secrets"] == {"api_key": None}
    assert c["health"] == "unknown"
    after = counts(api)
    assert after["connections"] == before["connections"] + 1


def test_asking_for_enabled_with_errors_is_409_and_creates_nothing(api, planner, occasion):
    before = counts(api)
    r = api.connect(planner, occasion, state="enabled", config={"account_id": "acct-123"}, secrets={})
    error = assert_error(r, 409, "validation_failed")
    assert {f["field"] for f in error["fields"]} == {"config.api_base_url", "secrets.api_key"}
    assert counts(api) == before


def test_create_enabled_without_errors(api, planner, occasion):
    r = api.connect(planner, occasion, state="enabled")
    assert r.status_code == 201, r.text
    c = r.json()["connection"]
    assert c["state"] == "enabled"
    assert [k for k, _ in activity_kinds(api, c["id"])] == ["connection.created", "connection.enabled"]


BAD_CREATES: list[tuple[dict[str, Any], str]] = [
    ({"integration_key": "no_such_adapter"}, "integration_key"),
    ({"action_keys": ["occasion.read", "guests.write"]}, "action_keys.1"),
    (
        {
            "action_keys": ["guests.read"],
            "integration_key": "venue_ops",
            "config": {"venue_id": "hall-7"},
            "secrets": {},
        },
        "action_keys.0",
    ),
    ({"config": {**GOOD_CONFIG, "colour": "red"}}, "config.colour"),
    ({"secrets": {"api_key": API_KEY, "password": "hunter2hunter2"}}, "secrets.password"),
    ({"secrets": {"api_key": 12345}}, "secrets.api_key"),
    ({"secrets": {"api_key": MASK + "wxyz"}}, "secrets.api_key"),
    ({"config": {**GOOD_CONFIG, "account_id": ["a", "b"]}}, "config.account_id"),
    ({"scope": {"type": "galaxy"}}, "scope.type"),
    ({"scope": {"type": "event"}}, "scope.event_id"),
    ({"scope": {"type": "event", "event_id": "evt_doesnotexist"}}, "scope.event_id"),
    ({"scope": {"type": "occasion", "event_id": "evt_x"}}, "scope.event_id"),
    ({"state": "disabled"}, "state"),
    ({"state": "revoked"}, "state"),
    ({"bogus": 1}, "bogus"),
    ({"integration_key": None}, "integration_key"),
    ({"action_keys": "occasion.read"}, "action_keys"),
]


def test_bad_create_input_is_422_and_creates_nothing(api, planner, occasion):
    before = counts(api)
    wrong = []
    for body, field in BAD_CREATES:
        r = api.connect(planner, occasion, **body)
        fields = {f["field"] for f in r.json()["error"]["fields"]} if r.status_code == 422 else set()
        if r.status_code != 422 or field not in fields:
            wrong.append((body, r.status_code, r.text))
        assert_error(r, r.status_code)
    assert wrong == []
    assert counts(api) == before


def test_event_scope_needs_an_event_of_this_occasion(api, planner, occasion):
    other_planner = api.user("planner")
    other = api.occasion(other_planner)
    foreign_event = api.event(other_planner, other)
    own_event = api.event(planner, occasion)
    error = assert_error(
        api.connect(planner, occasion, scope={"type": "event", "event_id": foreign_event}), 422
    )
    assert error["fields"][0]["field"] == "scope.event_id"
    r = api.connect(planner, occasion, scope={"type": "event", "event_id": own_event})
    assert r.status_code == 201, r.text
    c = r.json()["connection"]
    assert c["scope"] == {"type": "event", "occasion_id": occasion, "event_id": own_event}
    assert {g["scope"]["event_id"] for g in c["grants"]} == {own_event}


def test_platform_scope_is_for_admins_only(api, planner, occasion):
    before = counts(api)
    assert_error(api.connect(planner, occasion, scope={"type": "platform"}), 403, "forbidden")
    assert counts(api) == before
    admin = api.user("admin")
    r = api.connect(admin, occasion, scope={"type": "platform"})
    assert r.status_code == 201, r.text
    c = r.json()["connection"]
    assert c["scope"] == {"type": "platform", "occasion_id": None, "event_id": None}
    assert c["occasion_id"] == occasion
    assert {g["scope"]["type"] for g in c["grants"]} == {"platform"}


def test_planners_may_not_touch_a_platform_scoped_connection(api, planner, occasion):
    admin = api.user("admin")
    r = api.connect(admin, occasion, scope={"type": "platform"}, state="enabled")
    cid = r.json()["connection"]["id"]
    before = counts(api)
    for body in ({"rotate_key": True}, {"state": "disabled"}, {"action_keys": ["guests.read"]}, {}):
        assert_error(api.patch(planner, occasion, cid, **body), 403, "forbidden")
    assert counts(api) == before
    overview = api.client.get(base(occasion), headers=api.auth(planner)).json()
    assert [c["scope"]["type"] for c in overview["connections"]] == ["platform"]
    r = api.patch(admin, occasion, cid, rotate_key=True)
    assert r.status_code == 200, r.text
    assert "issued_key" in r.json()


def test_create_on_an_occasion_the_planner_does_not_plan_is_404(api, occasion):
    other = api.user("planner")
    before = counts(api)
    assert_error(api.connect(other, occasion), 404, "not_found")
    assert_error(api.connect(other, "occ_doesnotexist"), 404, "not_found")
    assert counts(api) == before


def test_create_with_malformed_json_is_400(api, planner, occasion):
    r = api.client.post(
        f"{base(occasion)}/connections",
        content=b'{"integration_key": ',
        headers={**api.auth(planner), "content-type": "application/json"},
    )
    assert_error(r, 400, "malformed_json")


def test_action_keys_may_be_narrowed_at_create(api, planner, occasion):
    r = api.connect(planner, occasion, action_keys=["guests.read", "occasion.read", "guests.read"])
    assert r.status_code == 201, r.text
    c = r.json()["connection"]
    assert c["action_keys"] == ["occasion.read", "guests.read"]
    assert [g["action_key"] for g in c["grants"]] == ["occasion.read", "guests.read"]


# --- transitions ----------------------------------------------------------------------------------

ALLOWED = {("draft", "enabled"), ("enabled", "disabled"), ("disabled", "enabled")}


def test_transitions(api, planner, occasion):
    actor = f"user:{user_id(api, planner)}"
    wrong = []
    for start in ("draft", "enabled", "disabled"):
        for target in ("draft", "enabled", "disabled", "revoked"):
            conn = make(api, planner, occasion, start)
            before = activity_kinds(api, conn["id"])
            r = api.patch(planner, occasion, conn["id"], state=target)
            with api.runtime.db.read() as s:
                stored = s.get(Connection, conn["id"]).state
            if (start, target) in ALLOWED or target == "revoked":
                ok = (
                    r.status_code == 200
                    and r.json()["connection"]["state"] == target == stored
                    and "issued_key" not in r.json()
                    and activity_kinds(api, conn["id"])[len(before) :] == [(f"connection.{target}", actor)]
                )
            else:
                ok = (
                    r.status_code == 409
                    and r.json()["error"]["code"] == "invalid_transition"
                    and activity_kinds(api, conn["id"]) == before
                    and stored == start
                )
            if not ok:
                wrong.append((start, target, r.status_code, r.text))
    assert wrong == []


def test_anything_on_a_revoked_connection_is_409_connection_revoked(api, planner, occasion):
    conn = make(api, planner, occasion, "revoked")
    before = counts(api)
    for body in [
        {"state": "enabled"},
        {"state": "disabled"},
        {"state": "draft"},
        {"state": "revoked"},
        {"config": {"account_id": "acct-999"}},
        {"secrets": {"api_key": "pk_live_NEWNEWNEWNEWNEW"}},
        {"action_keys": ["occasion.read"]},
        {"rotate_key": True},
        {},
    ]:
        assert_error(api.patch(planner, occasion, conn["id"], **body), 409, "connection_revoked")
    assert counts(api) == before


def test_enabling_a_draft_with_errors_is_409_validation_failed(api, planner, occasion):
    r = api.connect(planner, occasion, secrets={})
    cid = r.json()["connection"]["id"]
    error = assert_error(api.patch(planner, occasion, cid, state="enabled"), 409, "validation_failed")
    assert error["fields"] == [
        {"field": "secrets.api_key", "code": "required", "message": "API key is required."}
    ]
    with api.runtime.db.read() as s:
        assert s.get(Connection, cid).state == "draft"
    # the same PATCH that supplies the secret may enable it
    r = api.patch(planner, occasion, cid, state="enabled", secrets={"api_key": API_KEY})
    assert r.status_code == 200, r.text
    assert r.json()["connection"]["state"] == "enabled"


def test_an_edit_that_would_leave_an_enabled_connection_invalid_changes_nothing(api, planner, occasion):
    conn = make(api, planner, occasion, "enabled")
    before_view = api.client.get(f"{base(occasion)}", headers=api.auth(planner)).json()["connections"]
    before = counts(api)
    for body in [
        {"config": {"account_id": None}},
        {"config": {"api_base_url": "not a url"}},
        {"config": {"account_id": "no spaces allowed"}},
        {"secrets": {"api_key": None}},
        {"config": {"account_id": "acct-777", "api_base_url": "ftp://printer.example.com"}},
    ]:
        error = assert_error(api.patch(planner, occasion, conn["id"], **body), 409, "validation_failed")
        assert error["fields"], body
    assert counts(api) == before
    after_view = api.client.get(f"{base(occasion)}", headers=api.auth(planner)).json()["connections"]
    assert after_view == before_view
    assert stored_secrets(api, conn["id"]) == {"api_key": API_KEY}


def test_the_same_edit_on_a_draft_is_accepted_and_listed(api, planner, occasion):
    conn = make(api, planner, occasion, "draft")
    r = api.patch(planner, occasion, conn["id"], config={"account_id": None})
    assert r.status_code == 200, r.text
    c = r.json()["connection"]
    assert "account_id" not in c["config"]
    assert [e["field"] for e in c["validation"]["errors"]] == ["config.account_id"]


def test_same_state_with_edits_is_an_edit(api, planner, occasion):
    conn = make(api, planner, occasion, "enabled")
    r = api.patch(planner, occasion, conn["id"], state="enabled", config={"account_id": "acct-456"})
    assert r.status_code == 200, r.text
    assert r.json()["connection"]["config"]["account_id"] == "acct-456"
    assert [k for k, _ in activity_kinds(api, conn["id"])][-1] == "connection.updated"


def test_same_state_with_unchanged_values_is_a_harmless_no_op(api, planner, occasion):
    conn = make(api, planner, occasion, "enabled")
    before = counts(api)
    r = api.patch(planner, occasion, conn["id"], state="enabled", config=GOOD_CONFIG)
    assert r.status_code == 200, r.text
    assert counts(api) == before


def test_an_empty_patch_changes_nothing(api, planner, occasion):
    conn = make(api, planner, occasion, "enabled")
    before = counts(api)
    r = api.patch(planner, occasion, conn["id"])
    assert r.status_code == 200, r.text
    assert r.json()["connection"]["state"] == "enabled"
    assert counts(api) == before


def test_patch_with_bad_input_is_422_and_changes_nothing(api, planner, occasion):
    conn = make(api, planner, occasion, "draft")
    before = counts(api)
    for body in (
        {"config": {"colour": "red"}},
        {"secrets": {"token": "abcdefabcdefabcdef"}},
        {"action_keys": ["guests.write"]},
        {"state": "paused"},
        {"rotate_key": "yes"},
        {"config": {"account_id": {"nested": True}}},
        {"state": "revoked", "config": {"colour": "red"}},
    ):
        assert_error(api.patch(planner, occasion, conn["id"], **body), 422)
    assert counts(api) == before
    with api.runtime.db.read() as s:
        assert s.get(Connection, conn["id"]).state == "draft"


def test_patch_404s(api, planner, occasion):
    conn = make(api, planner, occasion, "draft")
    other = api.user("planner")
    other_occasion = api.occasion(other)
    assert_error(api.patch(other, occasion, conn["id"], state="revoked"), 404)
    assert_error(api.patch(other, other_occasion, conn["id"], state="revoked"), 404)
    assert_error(api.patch(planner, occasion, "con_doesnotexist", state="enabled"), 404)
    assert_error(api.patch(planner, "occ_doesnotexist", conn["id"], state="enabled"), 404)
    assert_error(api.patch(planner, occasion, "x" * 300, state="enabled"), 404)
    with api.runtime.db.read() as s:
        assert s.get(Connection, conn["id"]).state == "draft"


# --- config and secret merges -----------------------------------------------------------------


def test_config_merges_key_by_key_and_null_removes(api, planner, occasion):
    r = api.connect(
        planner,
        occasion,
        integration_key="venue_ops",
        config={"venue_id": "hall-7", "timezone": "Europe/Kyiv"},
        secrets={"api_token": "venue-token-0123456789"},
        state="enabled",
    )
    assert r.status_code == 201, r.text
    cid = r.json()["connection"]["id"]
    r = api.patch(planner, occasion, cid, config={"venue_id": "hall-8"})
    assert r.json()["connection"]["config"] == {"venue_id": "hall-8", "timezone": "Europe/Kyiv"}
    r = api.patch(planner, occasion, cid, config={"timezone": None})
    assert r.status_code == 200, r.text
    assert r.json()["connection"]["config"] == {"venue_id": "hall-8"}
    # removing a key that is not there is harmless
    r = api.patch(planner, occasion, cid, config={"timezone": None})
    assert r.status_code == 200, r.text
    assert stored_secrets(api, cid) == {"api_token": "venue-token-0123456789"}


def test_secrets_merge_and_null_removes_on_a_draft(api, planner, occasion):
    conn = make(api, planner, occasion, "draft")
    r = api.patch(planner, occasion, conn["id"], secrets={"api_key": None})
    assert r.status_code == 200, r.text
    c = r.json()["connection"]
    assert c["redacted_secrets"] == {"api_key": None}
    assert stored_secrets(api, conn["id"]) == {}
    r = api.patch(planner, occasion, conn["id"], secrets={"api_key": "short"})
    assert r.json()["connection"]["redacted_secrets"] == {"api_key": MASK}
    assert stored_secrets(api, conn["id"]) == {"api_key": "short"}


def test_sending_the_redacted_placeholder_back_keeps_the_stored_secret(api, planner, occasion):
    conn = make(api, planner, occasion, "enabled")
    view = api.client.get(base(occasion), headers=api.auth(planner)).json()["connections"][0]
    placeholder = view["redacted_secrets"]["api_key"]
    assert placeholder == MASK + "MNOP"
    r = api.patch(
        planner,
        occasion,
        conn["id"],
        config={**view["config"], "account_id": "acct-456"},
        secrets={"api_key": placeholder},
    )
    assert r.status_code == 200, r.text
    assert r.json()["connection"]["redacted_secrets"] == {"api_key": placeholder}
    assert stored_secrets(api, conn["id"]) == {"api_key": API_KEY}
    # an empty string keeps it too; another masked-looking value is refused
    assert api.patch(planner, occasion, conn["id"], secrets={"api_key": ""}).status_code == 200
    assert_error(api.patch(planner, occasion, conn["id"], secrets={"api_key": MASK + "abcd"}), 422)
    assert stored_secrets(api, conn["id"]) == {"api_key": API_KEY}
    # a real new value replaces it
    r = api.patch(planner, occasion, conn["id"], secrets={"api_key": "pk_live_ZYXWVUTSRQPO9876"})
    assert r.json()["connection"]["redacted_secrets"] == {"api_key": MASK + "9876"}
    assert stored_secrets(api, conn["id"]) == {"api_key": "pk_live_ZYXWVUTSRQPO9876"}


def test_action_keys_patch_keeps_grant_rows_in_step(api, planner, occasion):
    conn = make(api, planner, occasion, "enabled")
    r = api.patch(planner, occasion, conn["id"], action_keys=["events.read"])
    assert r.status_code == 200, r.text
    c = r.json()["connection"]
    assert c["action_keys"] == ["events.read"]
    assert [g["action_key"] for g in c["grants"]] == ["events.read"]
    with api.runtime.db.read() as s:
        live = s.scalars(
            select(Grant.action_key).where(
                Grant.subject_id == f"integration:{conn['id']}", Grant.revoked_at.is_(None)
            )
        ).all()
    assert live == ["events.read"]
    # the key loses what was taken away at once
    key = api.auth(conn["key"])
    assert api.client.get(f"/v1/occasions/{occasion}/events", headers=key).status_code == 200
    assert_error(api.client.get(f"/v1/occasions/{occasion}", headers=key), 403)


# --- rotation and revocation ----------------------------------------------------------------------


def test_rotate_key_issues_a_new_key_id_and_kills_the_old_key(api, planner, occasion):
    conn = make(api, planner, occasion, "enabled")
    old = conn["key"]
    assert api.client.get("/v1/integrations/me", headers=api.auth(old)).status_code == 200
    before = api.client.get(base(occasion), headers=api.auth(planner)).json()["connections"][0]
    r = api.patch(planner, occasion, conn["id"], rotate_key=True)
    assert r.status_code == 200, r.text
    body = r.json()
    new = body["issued_key"]
    key_id = body["connection"]["principal"]["key_id"]
    assert key_id != before["principal"]["key_id"]
    assert new.startswith(f"tov_{key_id}_")
    assert new != old
    assert_error(api.client.get("/v1/integrations/me", headers=api.auth(old)), 401, "unauthenticated")
    me = api.client.get("/v1/integrations/me", headers=api.auth(new))
    assert me.status_code == 200
    assert me.json()["key_id"] == key_id
    assert [k for k, _ in activity_kinds(api, conn["id"])][-1] == "key.rotated"
    # the key is never shown again
    for path in (base(occasion), f"{base(occasion)}/activity"):
        assert new not in api.client.get(path, headers=api.auth(planner)).text


def test_revocation_kills_keys_grants_and_stored_secrets_at_once(api, planner, occasion):
    conn = make(api, planner, occasion, "enabled")
    key = api.auth(conn["key"])
    assert api.client.get(f"/v1/occasions/{occasion}/guests", headers=key).status_code == 200
    r = api.patch(planner, occasion, conn["id"], state="revoked")
    assert r.status_code == 200, r.text
    c = r.json()["connection"]
    assert c["state"] == "revoked"
    assert c["grants"] == []
    assert c["redacted_secrets"] == {"api_key": None}
    assert_error(api.client.get(f"/v1/occasions/{occasion}/guests", headers=key), 401)
    assert_error(api.client.get("/v1/integrations/me", headers=key), 401)
    with api.runtime.db.read() as s:
        assert s.scalar(select(func.count()).where(ConnectionSecret.connection_id == conn["id"])) == 0
        principal = s.scalar(
            select(IntegrationPrincipal).where(IntegrationPrincipal.connection_id == conn["id"])
        )
        assert principal.revoked_at is not None
        assert s.scalars(
            select(IntegrationKey.revoked_at).where(IntegrationKey.principal_id == principal.id)
        ).all()
        assert (
            None
            not in s.scalars(
                select(IntegrationKey.revoked_at).where(IntegrationKey.principal_id == principal.id)
            ).all()
        )
        assert (
            None
            not in s.scalars(select(Grant.revoked_at).where(Grant.subject_id == principal.subject_id)).all()
        )
    assert stored_secrets(api, conn["id"]) == {}
    assert activity_kinds(api, conn["id"])[-1] == ("connection.revoked", f"user:{user_id(api, planner)}")


def test_disabling_stops_the_key_without_revoking_it(api, planner, occasion):
    conn = make(api, planner, occasion, "disabled")
    assert_error(api.client.get("/v1/integrations/me", headers=api.auth(conn["key"])), 403)
    r = api.patch(planner, occasion, conn["id"], state="enabled")
    assert r.status_code == 200, r.text
    assert api.client.get("/v1/integrations/me", headers=api.auth(conn["key"])).status_code == 200


# --- activity ---------------------------------------------------------------------------------------


def test_every_change_writes_activity_with_its_actor(api, planner, occasion):
    admin = api.user("admin")
    conn = make(api, planner, occasion, "draft")
    steps: list[tuple[str, dict[str, Any], str]] = [
        (planner, {"state": "enabled"}, "connection.enabled"),
        (admin, {"config": {"account_id": "acct-456"}}, "connection.updated"),
        (planner, {"secrets": {"api_key": "pk_live_ANOTHERKEY1234"}}, "connection.updated"),
        (planner, {"action_keys": ["occasion.read"]}, "connection.updated"),
        (admin, {"rotate_key": True}, "key.rotated"),
        (planner, {"state": "disabled"}, "connection.disabled"),
        (admin, {"state": "enabled"}, "connection.enabled"),
        (planner, {"state": "revoked"}, "connection.revoked"),
    ]
    expected = [("connection.created", f"user:{user_id(api, planner)}")]
    for token, body, kind in steps:
        assert api.patch(token, occasion, conn["id"], **body).status_code == 200
        expected.append((kind, f"user:{user_id(api, token)}"))
    assert activity_kinds(api, conn["id"]) == expected
    r = api.client.get(f"{base(occasion)}/activity?connection_id={conn['id']}", headers=api.auth(planner))
    entries = r.json()["activity"]
    assert [(e["kind"], e["actor"]) for e in entries] == list(reversed(expected))
    updated = [e for e in entries if e["kind"] == "connection.updated"]
    assert updated[-1]["details"]["fields_changed"] == ["config.account_id"]
    assert updated[-2]["details"]["fields_changed"] == ["secrets.api_key"]
    for e in entries:
        assert set(e) >= {
            "id",
            "occurred_at",
            "connection_id",
            "integration_key",
            "occasion_id",
            "kind",
            "actor",
            "summary",
            "details",
        }
        assert e["occasion_id"] == occasion
        assert e["integration_key"] == "printing_partner"
        assert e["summary"]


def test_overview_shows_newest_20_and_activity_pages_with_cursors(api, planner, occasion):
    conn = make(api, planner, occasion, "enabled")
    for i in range(12):
        api.patch(planner, occasion, conn["id"], state="disabled" if i % 2 == 0 else "enabled")
    other = make(api, planner, occasion, "draft")
    for i in range(10):
        api.patch(planner, occasion, other["id"], config={"account_id": f"acct-{i:03d}"})
    with api.runtime.db.read() as s:
        all_ids = s.scalars(
            select(Activity.id).where(Activity.occasion_id == occasion).order_by(Activity.id.desc())
        ).all()
    assert len(all_ids) == 2 + 12 + 1 + 10
    overview = api.client.get(base(occasion), headers=api.auth(planner)).json()
    assert [a["id"] for a in overview["activity"]] == all_ids[:20]
    assert {c["id"] for c in overview["connections"]} == {conn["id"], other["id"]}
    assert {a["integration_key"] for a in overview["catalog"]} >= {
        "printing_partner",
        "venue_ops",
        "guest_messaging",
    }

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        url = f"{base(occasion)}/activity?limit=7" + (f"&cursor={cursor}" if cursor else "")
        page = api.client.get(url, headers=api.auth(planner)).json()
        seen += [a["id"] for a in page["activity"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == all_ids
    assert pages == 4
    by_conn = api.client.get(
        f"{base(occasion)}/activity?connection_id={other['id']}", headers=api.auth(planner)
    ).json()
    assert len(by_conn["activity"]) == 11
    assert by_conn["next_cursor"] is None
    default = api.client.get(f"{base(occasion)}/activity", headers=api.auth(planner)).json()
    assert len(default["activity"]) == 25


def test_activity_route_errors(api, planner, occasion):
    other = api.user("planner")
    h = api.auth(planner)
    assert_error(api.client.get(f"{base(occasion)}/activity", headers=api.auth(other)), 404)
    assert_error(api.client.get(f"{base(occasion)}/activity?connection_id=con_nope", headers=h), 404)
    assert_error(api.client.get(f"{base(occasion)}/activity?limit=0", headers=h), 422)
    assert_error(api.client.get(f"{base(occasion)}/activity?limit=201", headers=h), 422)
    assert_error(api.client.get(f"{base(occasion)}/activity?limit=abc", headers=h), 422)
    assert_error(api.client.get(f"{base(occasion)}/activity?cursor=notacursor", headers=h), 422)
    assert_error(api.client.get(f"{base('occ_nope')}/activity", headers=h), 404)
    assert_error(api.client.get(f"{base(occasion)}/activity"), 401)


# --- sync and records -------------------------------------------------------------------------------


def test_sync_route(api, planner, occasion):
    enabled = make(api, planner, occasion, "enabled")
    draft = make(api, planner, occasion, "draft")
    r = api.client.post(f"{base(occasion)}/connections/{enabled['id']}/sync", headers=api.auth(planner))
    assert r.status_code == 202, r.text
    run_id = r.json()["sync_run_id"]
    with api.runtime.db.read() as s:
        assert s.get(SyncRun, run_id).connection_id == enabled["id"]
    assert_error(
        api.client.post(f"{base(occasion)}/connections/{draft['id']}/sync", headers=api.auth(planner)), 409
    )
    venue = api.connect(
        planner,
        occasion,
        integration_key="venue_ops",
        config={"venue_id": "hall-7"},
        secrets={"api_token": "venue-token-0123456789"},
        state="enabled",
    ).json()["connection"]
    assert_error(
        api.client.post(f"{base(occasion)}/connections/{venue['id']}/sync", headers=api.auth(planner)), 409
    )
    assert_error(
        api.client.post(f"{base(occasion)}/connections/con_nope/sync", headers=api.auth(planner)), 404
    )
    assert_error(api.client.post(f"{base(occasion)}/connections/%00/sync", headers=api.auth(planner)), 404)
    other = api.user("planner")
    assert_error(
        api.client.post(f"{base(occasion)}/connections/{enabled['id']}/sync", headers=api.auth(other)), 404
    )


def _insert_records(api: Api, connection_id: str, n: int) -> list[str]:
    ids = []
    with api.runtime.db.write() as s:
        for i in range(n):
            rid = new_id("rec")
            ids.append(rid)
            s.add(
                SyncedRecord(
                    id=rid,
                    connection_id=connection_id,
                    kind="print_order",
                    external_id=f"order-{i:03d}",
                    data={"order_id": f"order-{i:03d}", "status": "printed"},
                    updated_at=utcnow(),
                )
            )
    return ids


def test_records_route_paginates_and_404s(api, planner, occasion):
    conn = make(api, planner, occasion, "enabled")
    other_conn = make(api, planner, occasion, "enabled")
    ids = _insert_records(api, conn["id"], 13)
    _insert_records(api, other_conn["id"], 2)
    url = f"{base(occasion)}/connections/{conn['id']}/records"
    seen = []
    cursor = None
    while True:
        page = api.client.get(
            url + "?limit=5" + (f"&cursor={cursor}" if cursor else ""), headers=api.auth(planner)
        )
        assert page.status_code == 200, page.text
        body = page.json()
        for rec in body["records"]:
            assert set(rec) == {"external_id", "kind", "data", "updated_at", "written_at", "deleted_at"}
            assert rec["kind"] == "print_order"
            assert rec["data"]["order_id"] == rec["external_id"]
        seen += [r["external_id"] for r in body["records"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"order-{i:03d}" for i in range(13)]
    assert len(ids) == 13
    full = api.client.get(url, headers=api.auth(planner)).json()
    assert len(full["records"]) == 13
    assert full["next_cursor"] is None
    other = api.user("planner")
    other_occasion = api.occasion(other)
    assert_error(api.client.get(url, headers=api.auth(other)), 404)
    assert_error(
        api.client.get(f"{base(other_occasion)}/connections/{conn['id']}/records", headers=api.auth(other)),
        404,
    )
    assert_error(
        api.client.get(f"{base(occasion)}/connections/con_nope/records", headers=api.auth(planner)), 404
    )
    assert_error(api.client.get(url + "?limit=500", headers=api.auth(planner)), 422)
    assert_error(api.client.get(url + "?cursor=%00", headers=api.auth(planner)), 422)
    admin = api.user("admin")
    assert len(api.client.get(url, headers=api.auth(admin)).json()["records"]) == 13
    assert_error(api.client.get(url, headers=api.auth(conn["key"])), 403)
