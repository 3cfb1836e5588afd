"""Integration principals: identity, issued keys, explicit grant rows, /me, last use."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update

from tests.conftest import Api, assert_error
from tovplus.db.models import Base, Grant, IntegrationKey
from tovplus.db.types import utcnow

KEY_RE = re.compile(r"tov_([A-Za-z0-9]+)_([A-Za-z0-9_-]{20,})")
SECRET = "pk_live_PRINCIPALSECRET0001"


def connect(api: Api, token: str, occasion: str, **body):
    r = api.connect(token, occasion, secrets={"api_key": SECRET}, state="enabled", **body)
    assert r.status_code == 201, r.text
    return r.json()


def dump_database(api: Api) -> str:
    """Every value of every table as text (bytes both raw-decoded and hex)."""
    parts: list[str] = []
    with api.runtime.db.read() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)).all():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        raw = bytes(value)
                        parts += [raw.decode("latin-1"), raw.hex()]
                    else:
                        parts.append(str(value))
    return "\n".join(parts)


def test_principal_identity_and_key_shape(api):
    planner = api.user("planner")
    occasion = api.occasion(planner)
    body = connect(api, planner, occasion)
    c = body["connection"]
    match = KEY_RE.fullmatch(body["issued_key"])
    assert match, body["issued_key"]
    assert match.group(1) == c["principal"]["key_id"]
    assert c["principal"] == {
        "principal_type": "integration_principal",
        "subject_id": f"integration:{c['id']}",
        "key_id": match.group(1),
        "key_last_used_at": None,
    }
    assert {g["subject_id"] for g in c["grants"]} == {f"integration:{c['id']}"}


def test_key_ids_are_unique_and_keys_are_stored_only_as_hashes(api):
    planner = api.user("planner")
    occasion = api.occasion(planner)
    keys = [connect(api, planner, occasion)["issued_key"] for _ in range(6)]
    cid = connect(api, planner, occasion)["connection"]["id"]
    r = api.patch(planner, occasion, cid, rotate_key=True)
    keys.append(r.json()["issued_key"])
    key_ids = [KEY_RE.fullmatch(k).group(1) for k in keys]
    assert len(set(key_ids)) == len(key_ids)
    with api.runtime.db.read() as s:
        stored_ids = s.scalars(select(IntegrationKey.key_id)).all()
    assert len(stored_ids) == len(set(stored_ids)) == 8
    dump = dump_database(api)
    for key in keys:
        secret_part = KEY_RE.fullmatch(key).group(2)
        assert key not in dump
        assert secret_part not in dump
    assert SECRET not in dump  # connection secrets are encrypted at rest
    assert planner not in dump  # user tokens are hashed too


def test_grant_rows_one_per_principal_scope_and_action_key_in_step_with_patches(api):
    planner = api.user("planner")
    occasion = api.occasion(planner)
    body = connect(api, planner, occasion)
    cid = body["connection"]["id"]
    subject = f"integration:{cid}"
    key = api.auth(body["issued_key"])

    def rows() -> list[tuple[str, str, str | None, str | None, bool]]:
        with api.runtime.db.read() as s:
            return [
                (g.action_key, g.scope_type, g.scope_occasion_id, g.scope_event_id, g.revoked_at is None)
                for g in s.scalars(
                    select(Grant).where(Grant.subject_id == subject).order_by(Grant.action_key)
                )
            ]

    assert rows() == [
        ("events.read", "occasion", occasion, None, True),
        ("guests.read", "occasion", occasion, None, True),
        ("occasion.read", "occasion", occasion, None, True),
    ]
    r = api.patch(planner, occasion, cid, action_keys=["occasion.read"])
    assert [g["action_key"] for g in r.json()["connection"]["grants"]] == ["occasion.read"]
    assert rows() == [
        ("events.read", "occasion", occasion, None, False),
        ("guests.read", "occasion", occasion, None, False),
        ("occasion.read", "occasion", occasion, None, True),
    ]
    assert_error(api.client.get(f"/v1/occasions/{occasion}/guests", headers=key), 403)
    assert api.client.get("/v1/integrations/me", headers=key).json()["action_keys"] == ["occasion.read"]
    r = api.patch(planner, occasion, cid, action_keys=["occasion.read", "guests.read", "events.read"])
    assert r.status_code == 200
    assert len(rows()) == 3  # given back: the same rows are live again
    assert all(live for *_, live in rows())
    assert api.client.get(f"/v1/occasions/{occasion}/guests", headers=key).status_code == 200
    # the rows are what is enforced: revoke one behind the API's back and the key loses it
    with api.runtime.db.write() as s:
        s.execute(
            update(Grant)
            .where(Grant.subject_id == subject, Grant.action_key == "guests.read")
            .values(revoked_at=utcnow())
        )
    assert_error(api.client.get(f"/v1/occasions/{occasion}/guests", headers=key), 403)
    view = api.client.get(f"/v1/occasions/{occasion}/integrations", headers=api.auth(planner)).json()
    assert [g["action_key"] for g in view["connections"][0]["grants"]] == ["occasion.read", "events.read"]


def test_me_describes_the_calling_principal(api):
    planner = api.user("planner")
    occasion = api.occasion(planner)
    event = api.event(planner, occasion)
    body = connect(
        api, planner, occasion, scope={"type": "event", "event_id": event}, action_keys=["events.read"]
    )
    c = body["connection"]
    r = api.client.get("/v1/integrations/me", headers=api.auth(body["issued_key"]))
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["subject_id"] == f"integration:{c['id']}"
    assert me["key_id"] == c["principal"]["key_id"]
    assert me["scope"] == {"type": "event", "occasion_id": occasion, "event_id": event}
    assert me["action_keys"] == ["events.read"]
    assert_error(api.client.get("/v1/integrations/me", headers=api.auth(planner)), 403)
    assert_error(api.client.get("/v1/integrations/me", headers=api.auth(api.user("admin"))), 403)
    assert_error(api.client.get("/v1/integrations/me"), 401)
    assert_error(api.client.get("/v1/integrations/me", headers=api.auth("tov_nokey_nosecretatall")), 401)


def test_event_scoped_principal_sees_only_its_event(api):
    planner = api.user("planner")
    occasion = api.occasion(planner)
    mine = api.event(planner, occasion, "Dinner")
    api.event(planner, occasion, "Ceremony")
    key = api.auth(connect(api, planner, occasion, scope={"type": "event", "event_id": mine})["issued_key"])
    events = api.client.get(f"/v1/occasions/{occasion}/events", headers=key).json()["events"]
    assert [e["id"] for e in events] == [mine]
    assert (
        len(api.client.get(f"/v1/occasions/{occasion}/events", headers=api.auth(planner)).json()["events"])
        == 2
    )


def test_platform_principal_reaches_every_occasion(api):
    admin = api.user("admin")
    planner = api.user("planner")
    occasion = api.occasion(planner)
    other = api.occasion(api.user("planner"))
    key = api.auth(connect(api, admin, occasion, scope={"type": "platform"})["issued_key"])
    assert api.client.get(f"/v1/occasions/{other}", headers=key).status_code == 200
    assert api.client.get(f"/v1/occasions/{other}/guests", headers=key).status_code == 200
    assert_error(api.client.get("/v1/occasions/occ_doesnotexist", headers=key), 404)
    assert_error(api.client.get(f"/v1/occasions/{other}/integrations", headers=key), 403)


def test_key_last_used_at_is_set_on_use_and_coalesced(api):
    planner = api.user("planner")
    occasion = api.occasion(planner)
    body = connect(api, planner, occasion)
    cid, key = body["connection"]["id"], api.auth(body["issued_key"])
    key_id = body["connection"]["principal"]["key_id"]

    def last_used() -> str | None:
        view = api.client.get(f"/v1/occasions/{occasion}/integrations", headers=api.auth(planner)).json()
        (c,) = [c for c in view["connections"] if c["id"] == cid]
        return c["principal"]["key_last_used_at"]

    assert last_used() is None
    assert api.client.get(f"/v1/occasions/{occasion}", headers=key).status_code == 200
    first = last_used()
    assert first is not None
    assert first.endswith("Z")
    assert api.client.get(f"/v1/occasions/{occasion}/events", headers=key).status_code == 200
    assert last_used() == first  # coalesced: at most once a minute
    with api.runtime.db.write() as s:
        s.execute(
            update(IntegrationKey)
            .where(IntegrationKey.key_id == key_id)
            .values(last_used_at=utcnow() - timedelta(minutes=5))
        )
    stale = last_used()
    assert api.client.get(f"/v1/occasions/{occasion}", headers=key).status_code == 200
    assert last_used() > stale


def test_keys_of_draft_and_disabled_connections_are_refused(api):
    planner = api.user("planner")
    occasion = api.occasion(planner)
    draft = api.connect(planner, occasion).json()
    assert_error(api.client.get(f"/v1/occasions/{occasion}", headers=api.auth(draft["issued_key"])), 403)
    body = connect(api, planner, occasion)
    api.patch(planner, occasion, body["connection"]["id"], state="disabled")
    assert_error(api.client.get(f"/v1/occasions/{occasion}", headers=api.auth(body["issued_key"])), 403)
