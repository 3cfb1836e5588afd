"""The planner overview authenticates its bearer token in its own read session (issue 20):
the same answers as any route for every kind of caller, and the token's use still recorded."""

from __future__ import annotations

from sqlalchemy import select

from tovplus.db.models import UserToken
from tovplus.services.auth import sha256_hex


def overview(api, occasion_id: str, token: str | None):
    headers = api.auth(token) if token else {}
    return api.client.get(f"/v1/occasions/{occasion_id}/integrations", headers=headers)


def test_the_overview_answers_each_caller_as_before(api):
    planner, stranger, admin = api.user(), api.user(), api.user("admin")
    occasion_id = api.occasion(planner)
    key = api.connect(planner, occasion_id).json()["issued_key"]
    assert overview(api, occasion_id, planner).status_code == 200
    assert overview(api, occasion_id, admin).status_code == 200
    assert overview(api, occasion_id, stranger).status_code == 404
    assert overview(api, occasion_id, key).status_code == 403  # integration keys cannot manage
    missing = overview(api, occasion_id, None)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthenticated"
    assert overview(api, occasion_id, "tov_not_a_token").status_code == 401


def test_the_overview_records_the_tokens_use(api, runtime):
    planner = api.user()
    occasion_id = api.occasion(planner)
    with runtime.db.write() as session:  # as if never used
        row = session.scalars(select(UserToken).where(UserToken.token_hash == sha256_hex(planner))).one()
        row.last_used_at = None
    assert overview(api, occasion_id, planner).status_code == 200
    with runtime.db.read() as session:
        row = session.scalars(select(UserToken).where(UserToken.token_hash == sha256_hex(planner))).one()
        assert row.last_used_at is not None
