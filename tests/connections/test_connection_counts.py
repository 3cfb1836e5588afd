"""The admin summary's trigger-kept counts (migration 0011) stay exact whoever changes connections.

Each test changes connections one way (the ORM, raw SQL, in bulk, by a cascade, concurrently)
and compares ``connection_counts``' sums with a ``COUNT(*) … GROUP BY`` of the connections,
before and after upkeep folds the delta rows. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, func, insert, select, text, update

from tests import factories
from tovplus.db.ids import new_id
from tovplus.db.models import Connection, ConnectionCount, Occasion
from tovplus.runtime import Runtime
from tovplus.services import connections, retention
from tovplus.services.connections import counts

HEALTHS = ("unknown", "healthy", "degraded", "failing")


def truth(rt: Runtime) -> Counter[tuple[str, str]]:
    with rt.db.read() as session:
        rows = session.execute(
            select(Connection.state, Connection.health, func.count()).group_by(
                Connection.state, Connection.health
            )
        ).all()
    return Counter({(s, h): n for s, h, n in rows})


def kept(rt: Runtime, **only: str) -> Counter[tuple[str, str]]:
    with rt.db.read() as session:
        return counts.pair_counts(session, **only)


def assert_exact(rt: Runtime) -> None:
    """The kept counts equal the real ones, before a fold and after one."""
    assert kept(rt) == truth(rt)
    retention.fold_counts(rt.db, above=0)
    assert kept(rt) == truth(rt)
    with rt.db.read() as session:
        assert session.scalar(select(func.count()).select_from(ConnectionCount)) == len(truth(rt))


def row(occasion_id: str, state: str = "enabled", health: str = "unknown") -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "id": new_id("con"),
        "occasion_id": occasion_id,
        "integration_key": "printing_partner",
        "state": state,
        "health": health,
        "health_reasons": [],
        "sync_health": health,
        "sync_health_reasons": [],
        "config": {},
        "scope_type": "occasion",
        "action_keys": [],
        "created_by": "test",
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


@pytest.fixture
def occasion(runtime: Runtime) -> str:
    return factories.occasion(runtime, factories.user(runtime))


def test_an_empty_database_counts_nothing(runtime: Runtime):
    assert kept(runtime) == Counter()
    assert retention.fold_counts(runtime.db, above=0) == 0


def test_counts_follow_the_services_and_the_orm(runtime: Runtime, occasion: str):
    planner = factories.user(runtime)
    mine = factories.occasion(runtime, planner)
    made = [factories.connection(runtime, planner, mine).connection for _ in range(3)]
    factories.connection(runtime, planner, mine, state="draft")
    assert kept(runtime) == truth(runtime)
    assert sum(kept(runtime).values()) == 4
    connections.update_connection(
        runtime, planner.caller, mine, made[0]["id"], connections.ConnectionPatch(state="disabled")
    )
    with runtime.db.write() as session:
        orm = session.get(Connection, made[1]["id"])
        assert orm is not None
        orm.health = "failing"
        orm.label = "no count change"
        session.add(Connection(**row(occasion, "draft", "degraded")))
    with runtime.db.write() as session:
        doomed = session.get(Connection, made[2]["id"])
        session.delete(doomed)
    assert_exact(runtime)


def test_counts_follow_raw_sql(runtime: Runtime, occasion: str):
    first, second = row(occasion), row(occasion, "draft")
    with runtime.db.write() as session:
        session.execute(insert(Connection), [first, second])
        session.execute(
            text("UPDATE connections SET health = 'failing', state = 'disabled' WHERE id = :id"),
            {"id": first["id"]},
        )
        session.execute(
            text("UPDATE connections SET health = health, label = 'x' WHERE id = :id"), {"id": second["id"]}
        )
        session.execute(text("DELETE FROM connections WHERE id = :id"), {"id": second["id"]})
    assert kept(runtime) == Counter({("disabled", "failing"): 1})
    assert_exact(runtime)


def test_counts_follow_bulk_changes_and_a_cascade(runtime: Runtime, occasion: str):
    other = factories.occasion(runtime, factories.user(runtime))
    rows = [row(occasion, "enabled", HEALTHS[i % 4]) for i in range(120)]
    rows += [row(other, "draft", "unknown") for _ in range(30)]
    with runtime.db.write() as session:
        session.execute(insert(Connection), rows)
    with runtime.db.write() as session:
        session.execute(
            update(Connection)
            .where(Connection.health == "healthy")
            .values(health="degraded")
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(Connection)
            .where(Connection.occasion_id == occasion, Connection.health == "unknown")
            .values(state="disabled")
            .execution_options(synchronize_session=False)
        )
    assert_exact(runtime)
    with runtime.db.write() as session:  # the occasion's connections go by ON DELETE CASCADE
        session.execute(
            delete(Occasion).where(Occasion.id == other).execution_options(synchronize_session=False)
        )
    assert kept(runtime, state="draft") == Counter()
    assert_exact(runtime)


def test_state_and_health_filters_read_their_pairs(runtime: Runtime, occasion: str):
    with runtime.db.write() as session:
        session.execute(
            insert(Connection),
            [row(occasion, "enabled", "failing"), row(occasion, "disabled", "failing"), row(occasion)],
        )
    assert kept(runtime, health="failing") == Counter({("enabled", "failing"): 1, ("disabled", "failing"): 1})
    assert kept(runtime, state="enabled") == Counter({("enabled", "failing"): 1, ("enabled", "unknown"): 1})
    assert kept(runtime, state="enabled", health="healthy") == Counter()


def test_concurrent_writers_keep_the_counts_exact(runtime: Runtime, occasion: str):
    """Threads moving connections between the same pairs in opposite directions, a fold among them."""
    rows = [row(occasion, "enabled", HEALTHS[i % 4]) for i in range(40)]
    ids = [str(r["id"]) for r in rows]
    with runtime.db.write() as session:
        session.execute(insert(Connection), rows)
    errors: list[BaseException] = []

    def mover(offset: int) -> None:
        try:
            for step in range(15):
                with runtime.db.write() as session:
                    for i, cid in enumerate(ids[offset::2]):
                        session.execute(
                            update(Connection)
                            .where(Connection.id == cid)
                            .values(health=HEALTHS[(i + step + offset) % 4])
                            .execution_options(synchronize_session=False)
                        )
                if step % 5 == 0:
                    retention.fold_counts(runtime.db, above=0)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=mover, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert_exact(runtime)


def test_the_admin_summary_reads_the_kept_counts(api, runtime: Runtime, occasion: str):
    """Rows written behind the services' back show in the unfiltered and the health-filtered summary."""
    admin = api.user("admin")
    with runtime.db.write() as session:
        session.execute(insert(Connection), [row(occasion, "enabled", "failing"), row(occasion, "draft")])
        session.add(ConnectionCount(state="revoked", health="healthy", n=5))  # only the kept counts say so
    body = api.client.get("/v1/admin/integrations", headers=api.auth(admin)).json()
    assert body["summary"]["by_state"]["revoked"] == 5
    assert body["summary"]["total"] == 7
    failing = api.client.get("/v1/admin/integrations?health=failing", headers=api.auth(admin)).json()
    assert failing["summary"]["total"] == 1
    assert failing["summary"]["failing"] == 1
    by_occasion = api.client.get(
        f"/v1/admin/integrations?occasion_id={occasion}", headers=api.auth(admin)
    ).json()
    assert by_occasion["summary"]["total"] == 2  # an occasion's summary still counts its connections
    blank = api.client.get("/v1/admin/integrations?q=%20", headers=api.auth(admin)).json()
    assert blank["summary"]["total"] == 7  # blank text narrows nothing: the kept counts
    searched = api.client.get("/v1/admin/integrations?q=nothing-matches-this", headers=api.auth(admin)).json()
    assert searched["summary"]["total"] == 0  # text narrows the set: it is counted, not read


def test_the_pruner_folds_the_counts_each_tick(runtime: Runtime, occasion: str):
    with runtime.db.write() as session:
        session.execute(insert(Connection), [row(occasion) for _ in range(retention.counts.FOLD_ABOVE + 1)])
    before = truth(runtime)
    retention.Pruner(runtime).tick()
    with runtime.db.read() as session:
        assert session.scalar(select(func.count()).select_from(ConnectionCount)) == 1
    assert kept(runtime) == before
