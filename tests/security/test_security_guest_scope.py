"""Issue 13, finding 8: a key scoped to one event read the whole occasion's guest list.

Guests belong to the occasion (a guest row has no event), so event scope cannot narrow them:
``guests.read`` is refused to event-scoped keys (403), asking for it on an event-scoped
connection is a 422 on that action key, and an event-scoped connection's default grants
leave it out.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import assert_error
from tests.support.web import PRINTING_FORM, WebUser, connection_ids, occasion, person
from tovplus.db.models import Event, Grant, IntegrationPrincipal
from tovplus.services.auth import set_grants

ALL = ["occasion.read", "events.read", "guests.read"]


@pytest.fixture
def world(api) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    planner = api.user("planner")
    occ = api.occasion(planner)
    event = api.event(planner, occ, "Dinner")
    r = api.client.post(f"/v1/occasions/{occ}/guests", json={"name": "Ola"}, headers=api.auth(planner))
    assert r.status_code == 201, r.text
    return {"planner": planner, "occ": occ, "event": event}


def _event_scope(world: dict[str, Any]) -> dict[str, str]:
    return {"type": "event", "event_id": world["event"]}


def _guests(api, occ: str, key: str) -> Any:  # type: ignore[no-untyped-def]
    return api.client.get(f"/v1/occasions/{occ}/guests", headers=api.auth(key))


def test_an_event_scoped_key_cannot_read_the_guest_list(api, world):  # type: ignore[no-untyped-def]
    r = api.connect(world["planner"], world["occ"], state="enabled", scope=_event_scope(world))
    assert r.status_code == 201, r.text
    key = r.json()["issued_key"]
    error = assert_error(_guests(api, world["occ"], key), 403)
    assert "whole occasion" in error["message"]
    events = api.client.get(f"/v1/occasions/{world['occ']}/events", headers=api.auth(key))
    assert [e["id"] for e in events.json()["events"]] == [world["event"]]  # what it may read, it reads


def test_an_occasion_scoped_key_still_reads_the_guest_list(api, world):  # type: ignore[no-untyped-def]
    key = api.connect(world["planner"], world["occ"], state="enabled").json()["issued_key"]
    r = _guests(api, world["occ"], key)
    assert r.status_code == 200, r.text
    assert [g["name"] for g in r.json()["guests"]] == ["Ola"]


def test_an_event_scoped_connection_is_not_granted_guests_read_by_default(api, world):  # type: ignore[no-untyped-def]
    r = api.connect(world["planner"], world["occ"], state="enabled", scope=_event_scope(world))
    connection = r.json()["connection"]
    assert connection["action_keys"] == ["occasion.read", "events.read"]
    assert {g["action_key"] for g in connection["grants"]} == {"occasion.read", "events.read"}
    me = api.client.get("/v1/integrations/me", headers=api.auth(r.json()["issued_key"])).json()
    assert "guests.read" not in str(me)


def test_creating_an_event_scoped_connection_with_guests_read_is_422(api, runtime, world):  # type: ignore[no-untyped-def]
    r = api.connect(world["planner"], world["occ"], scope=_event_scope(world), action_keys=ALL)
    error = assert_error(r, 422)
    assert [(f["field"], f["code"]) for f in error["fields"]] == [("action_keys.2", "not_for_event_scope")]
    assert connection_ids(runtime, world["occ"]) == []


def test_granting_guests_read_to_an_event_scoped_connection_is_422(api, world):  # type: ignore[no-untyped-def]
    r = api.connect(world["planner"], world["occ"], state="enabled", scope=_event_scope(world))
    cid = r.json()["connection"]["id"]
    error = assert_error(api.patch(world["planner"], world["occ"], cid, action_keys=ALL), 422)
    assert [(f["field"], f["code"]) for f in error["fields"]] == [("action_keys.2", "not_for_event_scope")]
    after = api.client.get(
        f"/v1/occasions/{world['occ']}/integrations/connections/{cid}", headers=api.auth(world["planner"])
    )
    assert after.json()["connection"]["action_keys"] == ["occasion.read", "events.read"]


def test_an_event_scoped_key_holding_an_old_guests_grant_is_refused(api, runtime, world):  # type: ignore[no-untyped-def]
    """A grant row written before the rule (or by hand) does not widen event scope."""
    r = api.connect(world["planner"], world["occ"], state="enabled", scope=_event_scope(world))
    cid, key = r.json()["connection"]["id"], r.json()["issued_key"]
    with runtime.db.write() as session:
        principal = session.scalar(
            select(IntegrationPrincipal).where(IntegrationPrincipal.connection_id == cid)
        )
        assert principal is not None
        set_grants(session, principal, ALL, "test")
    with runtime.db.read() as session:
        held = session.scalars(
            select(Grant.action_key).where(
                Grant.subject_id == f"integration:{cid}", Grant.revoked_at.is_(None)
            )
        ).all()
    assert "guests.read" in held
    assert_error(_guests(api, world["occ"], key), 403)


def test_the_create_form_shows_the_error_next_to_the_action_keys(client, runtime):  # type: ignore[no-untyped-def]
    planner = person(runtime)
    occ = occasion(runtime, planner, events=1)
    web = WebUser(client, planner)
    with runtime.db.read() as session:
        event_id = session.scalars(select(Event.id).where(Event.occasion_id == occ)).one()
    url = f"/occasions/{occ}/integrations/new/printing_partner"
    form = {**PRINTING_FORM, "scope.type": "event", "scope.event_id": event_id}
    r = web.post(url, form, csrf=web.csrf(url))
    assert r.status_code == 422, r.text
    assert 'id="action_keys-error"' in r.text
    assert "cannot be granted it" in r.text
    assert connection_ids(runtime, occ) == []
    r = web.post(url, {**form, "action_keys": ["occasion.read", "events.read"]}, csrf=web.csrf(url))
    assert r.status_code == 303, r.text
