"""Racing PATCHes: every outcome must be one that some serial order of the two requests gives.

Two threads send their PATCH at the same moment (a barrier releases them) against the
same runtime. We model what each serial order would answer and leave behind, and
check the real outcome matches one of them, that the activity log replays as a legal
sequence of transitions, and that no request ever gets a 500. On PostgreSQL a second
test forces the worst interleaving (both requests read the row before either writes)
so the conditional update and its retry are exercised every time.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import BACKEND, Api
from tovplus.db.models import Activity, IntegrationKey, IntegrationPrincipal
from tovplus.services import connections
from tovplus.services.connections import store

ALLOWED = {("draft", "enabled"), ("enabled", "disabled"), ("disabled", "enabled")}
ROUNDS = 4

ENABLE = {"state": "enabled"}
DISABLE = {"state": "disabled"}
REVOKE = {"state": "revoked"}
ROTATE = {"rotate_key": True}
EDIT = {"config": {"account_id": "acct-raced"}}

RACES = {
    "enable_vs_revoke": ("draft", ENABLE, REVOKE),
    "enable_vs_enable": ("draft", ENABLE, ENABLE),
    "disable_vs_revoke": ("enabled", DISABLE, REVOKE),
    "disable_vs_disable": ("enabled", DISABLE, DISABLE),
    "revoke_vs_revoke": ("enabled", REVOKE, REVOKE),
    "rotate_vs_rotate": ("enabled", ROTATE, ROTATE),
    "rotate_vs_revoke": ("enabled", ROTATE, REVOKE),
    "edit_vs_disable": ("enabled", EDIT, DISABLE),
}


def model(state: str, body: dict[str, Any]) -> tuple[tuple[int, str | None], str]:
    """What one PATCH answers (status, error code) and the state it leaves, applied alone."""
    if state == "revoked":
        return (409, "connection_revoked"), state
    target = body.get("state")
    if target is None:
        return (200, None), state
    if target == state and not (set(body) - {"state"}):
        return (409, "invalid_transition"), state
    if target != "revoked" and (state, target) not in ALLOWED:
        return (409, "invalid_transition"), state
    return (200, None), target


def serial_outcomes(start: str, a: dict[str, Any], b: dict[str, Any]) -> list[tuple[Any, Any, str]]:
    """``(outcome of a, outcome of b, final state)`` for both serial orders."""
    first_a, mid = model(start, a)
    then_b, end_ab = model(mid, b)
    first_b, mid = model(start, b)
    then_a, end_ba = model(mid, a)
    return [(first_a, then_b, end_ab), (then_a, first_b, end_ba)]


def make(api: Api, token: str, occasion: str, state: str) -> dict[str, Any]:
    r = api.connect(token, occasion, state="enabled" if state == "enabled" else "draft")
    assert r.status_code == 201, r.text
    return {"id": r.json()["connection"]["id"], "key": r.json()["issued_key"]}


def race(api: Api, token: str, occasion: str, cid: str, a: dict[str, Any], b: dict[str, Any]) -> list[Any]:
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def run(i: int, body: dict[str, Any]) -> None:
        barrier.wait(timeout=10)
        try:
            results[i] = api.patch(token, occasion, cid, **body)
        except Exception as exc:  # pragma: no cover - reported below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, body)) for i, body in enumerate((a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def outcome(response: Any) -> tuple[int, str | None]:
    if response.status_code >= 400:
        return response.status_code, response.json()["error"]["code"]
    return response.status_code, None


def assert_activity_replays(api: Api, cid: str, start: str) -> None:
    """The connection's activity is a legal walk through the lifecycle."""
    with api.runtime.db.read() as s:
        kinds = s.scalars(
            select(Activity.kind).where(Activity.connection_id == cid).order_by(Activity.id)
        ).all()
    assert kinds[0] == "connection.created"
    state = "enabled" if kinds[1:2] == ["connection.enabled"] else "draft"
    for kind in kinds[2 if state == "enabled" else 1 :]:
        assert state != "revoked", f"activity after revocation: {kinds}"
        if kind.startswith("connection.") and kind not in ("connection.updated", "connection.created"):
            target = kind.split(".", 1)[1]
            assert target == "revoked" or (state, target) in ALLOWED, f"{state} -> {target}: {kinds}"
            state = target
    del start


def live_keys(api: Api, cid: str) -> list[str]:
    with api.runtime.db.read() as s:
        return list(
            s.scalars(
                select(IntegrationKey.key_id)
                .join(IntegrationPrincipal, IntegrationPrincipal.id == IntegrationKey.principal_id)
                .where(IntegrationPrincipal.connection_id == cid, IntegrationKey.revoked_at.is_(None))
            )
        )


@pytest.mark.parametrize("name", list(RACES))
def test_racing_patches_match_a_serial_order(api, name):
    start, a, b = RACES[name]
    planner = api.user("planner")
    occasion = api.occasion(planner)
    for _ in range(ROUNDS):
        conn = make(api, planner, occasion, start)
        ra, rb = race(api, planner, occasion, conn["id"], a, b)
        for r in (ra, rb):
            assert not isinstance(r, Exception), r
            assert r.status_code < 500, r.text
        final = api.client.get(
            f"/v1/occasions/{occasion}/integrations/connections/{conn['id']}", headers=api.auth(planner)
        ).json()["connection"]["state"]
        got = (outcome(ra), outcome(rb), final)
        assert got in serial_outcomes(start, a, b), f"{name}: {got}"
        assert_activity_replays(api, conn["id"], start)

        issued = [
            r.json()["issued_key"] for r in (ra, rb) if r.status_code == 200 and "issued_key" in r.json()
        ]
        live = live_keys(api, conn["id"])
        if final == "revoked":
            assert live == []
            for key in [conn["key"], *issued]:
                assert api.client.get("/v1/integrations/me", headers=api.auth(key)).status_code == 401
        else:
            assert len(live) == 1, live
            keys = [conn["key"], *issued]
            working = [k for k in keys if k.split("_")[1] == live[0]]
            assert len(working) == 1
            if final == "enabled":
                statuses = [
                    api.client.get("/v1/integrations/me", headers=api.auth(k)).status_code for k in keys
                ]
                assert sorted(statuses) == sorted([200] + [401] * (len(keys) - 1)), statuses


@pytest.mark.skipif(
    BACKEND != "postgresql", reason="SQLite write transactions never overlap (BEGIN IMMEDIATE)"
)
@pytest.mark.parametrize(
    ("start", "a", "b"),
    [("draft", ENABLE, ENABLE), ("enabled", DISABLE, REVOKE), ("enabled", ROTATE, ROTATE)],
)
def test_forced_interleaving_on_postgresql(api, monkeypatch, start, a, b):
    """Both requests read the row before either writes: the conditional update decides."""
    planner = api.user("planner")
    occasion = api.occasion(planner)
    conn = make(api, planner, occasion, start)
    barrier = threading.Barrier(2)
    local = threading.local()
    stale = []
    real_load = store.load_connection
    real_update = store.conditional_update

    def load_then_wait(session, occasion_id, connection_id):
        row = real_load(session, occasion_id, connection_id)
        if not getattr(local, "waited", False):
            local.waited = True
            barrier.wait(timeout=10)  # both transactions hold the same version now
        return row

    def counting_update(session, row, values):
        try:
            real_update(session, row, values)
        except connections.StaleWrite:
            stale.append(row.id)
            raise

    monkeypatch.setattr(store, "load_connection", load_then_wait)
    monkeypatch.setattr(store, "conditional_update", counting_update)
    ra, rb = race(api, planner, occasion, conn["id"], a, b)
    monkeypatch.undo()
    final = api.client.get(
        f"/v1/occasions/{occasion}/integrations/connections/{conn['id']}", headers=api.auth(planner)
    ).json()["connection"]["state"]
    got = (outcome(ra), outcome(rb), final)
    assert got in serial_outcomes(start, a, b), got
    assert stale == [conn["id"]]  # exactly one writer lost and was judged again
    assert_activity_replays(api, conn["id"], start)
    assert len(live_keys(api, conn["id"])) == (0 if final == "revoked" else 1)
