"""The lists' view cache (``services.connections.view_cache``) never serves a view that is out of date.

Each test lists the occasion's connections (the planner's overview) or the admin's first page
once, so the views are kept; changes one input of one view the way another process would (plain
SQL, the cache told nothing), lists again and compares every view with one built afresh from the
database. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from tests import factories
from tests.oauth.support import TokenIssuer, authorized_connection, registry
from tovplus.db.ids import new_id
from tovplus.db.models import CallbackRejection, Connection
from tovplus.integrations.registry import AdapterRegistry
from tovplus.runtime import Runtime, build_runtime
from tovplus.services import connections
from tovplus.services.auth import subject_for
from tovplus.services.connections import AdminFilters
from tovplus.services.connections.view_cache import ViewCache, cache_of
from tovplus.services.connections.views import ConnectionModel, build_views
from tovplus.settings import Settings


def overview(rt: Runtime, owner: factories.User, occasion_id: str) -> dict[str, ConnectionModel]:
    listed = connections.occasion_overview(rt, owner.caller, occasion_id).connections
    return {v.id: v for v in listed}


def fresh(rt: Runtime, ids: list[str]) -> dict[str, dict[str, object]]:
    """The views built again from the database, as plain data."""
    with rt.db.read() as session:
        rows = session.scalars(select(Connection).where(Connection.id.in_(ids))).all()
        return {v.id: v.model_dump() for v in build_views(rt, session, rows)}


def sql(rt: Runtime, statement: str, **params: object) -> None:
    with rt.db.write() as session:
        session.execute(text(statement), params)


@pytest.fixture
def made(runtime: Runtime) -> tuple[factories.User, str, list[str]]:
    owner = factories.user(runtime)
    occasion_id = factories.occasion(runtime, owner)
    ids = [factories.connection(runtime, owner, occasion_id).connection.id for _ in range(3)]
    return owner, occasion_id, ids


def test_a_second_list_reuses_every_view(
    runtime: Runtime, made: tuple[factories.User, str, list[str]]
) -> None:
    owner, occasion_id, ids = made
    first = overview(runtime, owner, occasion_id)
    second = overview(runtime, owner, occasion_id)
    assert sorted(first) == sorted(ids)
    assert all(second[i] is first[i] for i in ids)  # kept, not built again
    assert {i: v.model_dump() for i, v in second.items()} == fresh(runtime, ids)


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

#: One change per input of a view, as another process would make it (``{c}``: the connection).
CHANGES: dict[str, Callable[[Runtime, str], object]] = {
    "its own row": lambda rt, c: sql(rt, "UPDATE connections SET label = 'Front desk' WHERE id = :c", c=c),
    "its settings": lambda rt, c: sql(
        rt,
        "UPDATE connections SET config = :config WHERE id = :c",
        c=c,
        config='{"account_id": "acct-2", "api_base_url": "https://printer.example.com"}',
    ),
    "its suspension": lambda rt, c: sql(
        rt,
        "UPDATE connections SET suspended_at = :t, suspended_reason = 'Partner outage' WHERE id = :c",
        c=c,
        t=NOW,
    ),
    "its sync health": lambda rt, c: sql(
        rt,
        "UPDATE connections SET sync_health = 'failing', sync_health_reasons = :r WHERE id = :c",
        c=c,
        r='["The printer rejected the API key."]',
    ),
    "a secret": lambda rt, c: sql(
        rt, "UPDATE connection_secrets SET redacted = '••••wxyz' WHERE connection_id = :c", c=c
    ),
    "a secret removed": lambda rt, c: sql(rt, "DELETE FROM connection_secrets WHERE connection_id = :c", c=c),
    "its key used": lambda rt, c: sql(
        rt,
        "UPDATE integration_keys SET last_used_at = :t WHERE principal_id IN"
        " (SELECT id FROM integration_principals WHERE connection_id = :c)",
        c=c,
        t=NOW,
    ),
    "its key rotated": lambda rt, c: (
        sql(
            rt,
            "UPDATE integration_keys SET revoked_at = :t WHERE principal_id IN"
            " (SELECT id FROM integration_principals WHERE connection_id = :c)",
            c=c,
            t=NOW,
        ),
        sql(
            rt,
            "INSERT INTO integration_keys (id, principal_id, key_id, secret_hash, created_at)"
            " SELECT :k, id, :kid, :h, :t FROM integration_principals WHERE connection_id = :c",
            c=c,
            k=new_id("key"),
            kid="ik_rotated",
            h="0" * 64,
            t=NOW,
        ),
    ),
    "a grant revoked": lambda rt, c: sql(
        rt,
        "UPDATE grants SET revoked_at = :t WHERE id = (SELECT min(id) FROM grants WHERE subject_id = :s)",
        s=subject_for(c),
        t=NOW,
    ),
    "a grant added": lambda rt, c: sql(
        rt,
        "INSERT INTO grants (id, subject_id, scope_type, scope_occasion_id, scope_event_id, action_key,"
        " created_by, created_at) SELECT :g, subject_id, scope_type, scope_occasion_id, scope_event_id,"
        " 'guests.read', 'test', created_at FROM grants WHERE id = (SELECT min(id) FROM grants"
        " WHERE subject_id = :s)",
        g=new_id("grt"),
        s=subject_for(c),
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_to_any_input_shows_in_the_next_list(
    runtime: Runtime, made: tuple[factories.User, str, list[str]], change: str
) -> None:
    owner, occasion_id, ids = made
    before = overview(runtime, owner, occasion_id)
    CHANGES[change](runtime, ids[1])
    after = overview(runtime, owner, occasion_id)
    shown = {i: v.model_dump() for i, v in after.items()}
    assert shown == fresh(runtime, ids)
    assert shown[ids[1]] != before[ids[1]].model_dump(), f"{change} changed nothing in the view"
    assert after[ids[0]] is before[ids[0]]  # the others kept
    assert after[ids[2]] is before[ids[2]]


def test_the_admin_list_keeps_and_renews_views_the_same_way(
    runtime: Runtime, made: tuple[factories.User, str, list[str]]
) -> None:
    _owner, _occasion_id, ids = made
    admin = factories.user(runtime, role="admin")
    first, _ = connections.admin_list(runtime, admin.caller, AdminFilters(), limit=50, cursor=None)
    CHANGES["its own row"](runtime, ids[0])
    second, _ = connections.admin_list(
        runtime, admin.caller, AdminFilters(sort="oldest"), limit=50, cursor=None
    )
    by_id = {v.id: v for v in first.items}
    assert [v.id for v in second.items] == ids
    assert {v.id: v.model_dump() for v in second.items} == fresh(runtime, ids)
    assert second.items[0] is not by_id[ids[0]]
    assert second.items[0].label == "Front desk"
    assert second.items[1] is by_id[ids[1]]


def test_callback_rejections_are_read_each_time_not_kept(
    runtime: Runtime, made: tuple[factories.User, str, list[str]]
) -> None:
    owner, occasion_id, ids = made
    before = overview(runtime, owner, occasion_id)
    now = datetime.now(UTC)
    with runtime.db.write() as session:
        session.add(
            CallbackRejection(
                connection_id=ids[2],
                minute=now.replace(second=0, microsecond=0),
                reason="bad_signature",
                count=3,
                last_at=now,
            )
        )
    after = overview(runtime, owner, occasion_id)
    assert before[ids[2]].callback_rejections.total == 0
    assert after[ids[2]].callback_rejections.total == 3
    assert after[ids[2]].callback_rejections.by_reason == {"bad_signature": 3}
    assert {i: v.model_dump() for i, v in after.items()} == fresh(runtime, ids)
    assert after[ids[0]] is before[ids[0]]


def test_an_oauth_grant_change_shows_in_the_next_list(settings: Settings) -> None:
    rt = build_runtime(settings, registry=registry())
    try:
        made = authorized_connection(rt, TokenIssuer())
        listed = overview(rt, made.owner, made.occasion_id)
        assert listed[made.connection_id].authorization is not None
        assert listed[made.connection_id].authorization.status == "authorized"
        sql(
            rt,
            "UPDATE oauth_grants SET status = 'reconnect_required' WHERE connection_id = :c",
            c=made.connection_id,
        )
        again = overview(rt, made.owner, made.occasion_id)
        assert again[made.connection_id].authorization is not None
        assert again[made.connection_id].authorization.status == "reconnect_required"
        assert {i: v.model_dump() for i, v in again.items()} == fresh(rt, [made.connection_id])
    finally:
        rt.close()


def test_another_adapter_installed_under_the_same_key_builds_the_view_again(
    runtime: Runtime, made: tuple[factories.User, str, list[str]]
) -> None:
    owner, occasion_id, ids = made
    before = overview(runtime, owner, occasion_id)
    replaced = AdapterRegistry()
    for adapter in runtime.registry:
        replaced.register(type(adapter))
    runtime.registry = replaced
    after = overview(runtime, owner, occasion_id)
    assert all(after[i] is not before[i] for i in ids)
    assert {i: v.model_dump() for i, v in after.items()} == fresh(runtime, ids)


def test_the_cache_keeps_the_most_recently_listed_up_to_its_capacity() -> None:
    cache = ViewCache(capacity=2)
    views = {
        name: ConnectionModel.model_construct(id=name, integration_key="printing_partner") for name in "abc"
    }
    for name, view in views.items():
        cache.keep(name, f"fp-{name}", None, view)
        if name == "b":
            assert cache.hit("a", "fp-a", None) is views["a"]  # a was listed again: b is the oldest now
    assert len(cache) == 2
    assert cache.hit("b", "fp-b", None) is None
    assert cache.hit("a", "fp-a", None) is views["a"]
    assert cache.hit("c", "fp-c", None) is views["c"]
    assert cache.hit("c", "fp-other", None) is None  # another fingerprint: not this view


def test_each_runtime_has_its_own_cache(runtime: Runtime, settings: Settings) -> None:
    other = build_runtime(settings)
    try:
        assert cache_of(runtime) is cache_of(runtime)
        assert cache_of(other) is not cache_of(runtime)
    finally:
        other.close()
