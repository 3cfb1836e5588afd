"""Retention: what goes and what stays, dry runs, bounded batches, the leader's pruner, the CLI.

Runs on the backend of the pass (SQLite, then PostgreSQL). Rows are inserted with ids made
"in the past" (``id_floor`` of an earlier time plus random digits), as ``new_id`` would have.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, inspect, select

from tests.conftest import BACKEND, Api
from tests.processes.test_cli import cli_env, run_cli
from tovplus.db.ids import id_floor
from tovplus.db.models import (
    Activity,
    CallbackDelivery,
    PlatformEvent,
    SyncRun,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from tovplus.db.types import utcnow
from tovplus.runtime import Runtime
from tovplus.services import retention
from tovplus.settings import Settings

NOW = utcnow()


def made_at(prefix: str, days_ago: float) -> str:
    """An id ``new_id(prefix)`` would have made ``days_ago`` days ago."""
    return id_floor(prefix, NOW - timedelta(days=days_ago))[:-16] + secrets.token_hex(8)


@pytest.fixture
def owners(api: Api) -> dict[str, str]:
    """An occasion, two connections on it and a webhook endpoint: the parents the rows need."""
    token = api.user("planner")
    occasion_id = api.occasion(token)
    ids = []
    for _ in range(3):
        r = api.connect(token, occasion_id, state="enabled")
        assert r.status_code == 201, r.text
        ids.append(r.json()["connection"]["id"])
    with api.runtime.db.write() as session:
        session.add(
            WebhookEndpoint(
                id="whe_test",
                occasion_id=occasion_id,
                url="https://hooks.example.com/x",
                event_types=["integration.sync_completed"],
                secret_key_id="k",
                secret_nonce=b"0" * 12,
                secret_ciphertext=b"x",
                created_by="test",
            )
        )
    return {"occasion": occasion_id, "a": ids[0], "b": ids[1], "c": ids[2], "endpoint": "whe_test"}


def add_activity(rt: Runtime, days_ago: float, count: int = 1, connection_id: str | None = None) -> list[str]:
    ids = sorted(made_at("act", days_ago) for _ in range(count))
    with rt.db.write() as session:
        for activity_id in ids:
            session.add(
                Activity(
                    id=activity_id,
                    occurred_at=NOW - timedelta(days=days_ago),
                    connection_id=connection_id,
                    kind="test.old",
                    actor="system",
                    summary="old",
                    details={},
                )
            )
    return ids


def add_callback_delivery(rt: Runtime, connection_id: str, days_ago: float) -> str:
    delivery_id = f"dlv-{secrets.token_hex(4)}"
    with rt.db.write() as session:
        session.add(
            CallbackDelivery(
                connection_id=connection_id,
                delivery_id=delivery_id,
                activity_id=made_at("act", days_ago),
                received_at=NOW - timedelta(days=days_ago),
            )
        )
    return delivery_id


def add_delivery(rt: Runtime, endpoint_id: str, days_ago: float, state: str, attempts: int = 2) -> str:
    delivery_id = made_at("msg", days_ago)
    with rt.db.write() as session:
        session.add(
            WebhookDelivery(
                id=delivery_id,
                endpoint_id=endpoint_id,
                event_type="integration.sync_completed",
                payload={},
                state=state,
                attempt=attempts,
                created_at=NOW - timedelta(days=days_ago),
            )
        )
        session.flush()
        for _ in range(attempts):
            session.add(
                WebhookAttempt(
                    id=made_at("wha", days_ago),
                    delivery_id=delivery_id,
                    attempted_at=NOW - timedelta(days=days_ago),
                    status_code=500,
                    duration_ms=1.0,
                    succeeded=False,
                )
            )
    return delivery_id


def add_runs(
    rt: Runtime, connection_id: str, days_ago: float, count: int, state: str = "succeeded"
) -> list[str]:
    ids = sorted(made_at("run", days_ago + i / 1000) for i in range(count))
    with rt.db.write() as session:
        for run_id in ids:
            session.add(
                SyncRun(
                    id=run_id,
                    connection_id=connection_id,
                    state=state,
                    trigger="schedule",
                    requested_by="system",
                    created_at=NOW - timedelta(days=days_ago),
                )
            )
    return ids


def add_platform_events(rt: Runtime, occasion_id: str, days_ago: float, *, dispatched: bool) -> list[str]:
    ids = sorted(made_at("pev", days_ago + i / 1000) for i in range(3))
    at = NOW - timedelta(days=days_ago)
    with rt.db.write() as session:
        for event_id in ids:
            session.add(
                PlatformEvent(
                    id=event_id,
                    occasion_id=occasion_id,
                    event_type="guest.created",
                    subject_id=None,
                    occurred_at=at,
                    dispatched_at=at + timedelta(seconds=1) if dispatched else None,
                )
            )
    return ids


def ids_of(rt: Runtime, column: Any) -> set[str]:
    with rt.db.read() as session:
        return set(session.scalars(select(column)))


def count(rt: Runtime, model: Any) -> int:
    with rt.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def tuned(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update=changes)


def rows_by_table(report: retention.PruneReport) -> dict[str, int]:
    return {t.table: t.rows for t in report.tables}


# --- what goes, what stays -------------------------------------------------------------------


def test_rows_older_than_their_window_go_and_newer_ones_stay(runtime: Runtime, owners: dict[str, str]):
    old_activity = add_activity(runtime, 181, 3)
    kept_activity = add_activity(runtime, 179, 2)
    old_callback = add_callback_delivery(runtime, owners["a"], 8)
    kept_callback = add_callback_delivery(runtime, owners["a"], 6)
    gone = [add_delivery(runtime, owners["endpoint"], 31, s) for s in ("delivered", "failed")]
    kept = [
        add_delivery(runtime, owners["endpoint"], 29, "delivered"),
        add_delivery(runtime, owners["endpoint"], 31, "pending"),  # unfinished: stays, however old
        add_delivery(runtime, owners["endpoint"], 31, "delivering"),
    ]
    activity_before = ids_of(runtime, Activity.id)

    report = retention.prune(runtime.db, runtime.settings)

    assert report.complete
    assert not report.dry_run
    assert rows_by_table(report) == {
        "callback_deliveries": 1,
        "activity": 3,
        "webhook_deliveries": 2,
        "webhook_attempts": 4,
        "sync_runs": 0,
        "action_runs": 0,
        "platform_events": 0,
    }
    assert ids_of(runtime, Activity.id) == activity_before - set(old_activity)
    assert set(kept_activity) <= ids_of(runtime, Activity.id)
    assert ids_of(runtime, CallbackDelivery.delivery_id) == {kept_callback}
    assert old_callback not in ids_of(runtime, CallbackDelivery.delivery_id)
    assert ids_of(runtime, WebhookDelivery.id) == set(kept)
    assert not set(gone) & ids_of(runtime, WebhookAttempt.delivery_id)
    assert ids_of(runtime, WebhookAttempt.delivery_id) == set(kept)
    # a second pass finds nothing more
    assert retention.prune(runtime.db, runtime.settings).rows == 0


def test_dispatched_platform_events_go_after_their_window_and_pending_ones_stay(
    runtime: Runtime, owners: dict[str, str]
):
    old_dispatched = add_platform_events(runtime, owners["occasion"], 8, dispatched=True)
    old_pending = add_platform_events(runtime, owners["occasion"], 8, dispatched=False)
    new_dispatched = add_platform_events(runtime, owners["occasion"], 6, dispatched=True)

    assert rows_by_table(retention.plan(runtime.db, runtime.settings))["platform_events"] == 3
    report = retention.prune(runtime.db, runtime.settings, batch_size=2)

    assert rows_by_table(report)["platform_events"] == len(old_dispatched)
    assert ids_of(runtime, PlatformEvent.id) == set(old_pending) | set(new_dispatched)
    # the dispatcher still claims the pending ones
    from tovplus.services import platform_events

    with runtime.db.write() as session:
        assert [e.id for e in platform_events.claim_pending(session)] == old_pending
    kept = retention.prune(runtime.db, tuned(runtime.settings, platform_event_retention_days=0))
    assert rows_by_table(kept)["platform_events"] == 0


def test_the_newest_finished_runs_of_each_connection_always_stay(runtime: Runtime, owners: dict[str, str]):
    a_old = add_runs(runtime, owners["a"], 40, 25)  # 25 old, finished: the newest 20 stay
    a_active = add_runs(runtime, owners["a"], 45, 1, state="queued")  # active: never pruned
    b_old = add_runs(runtime, owners["b"], 40, 3)  # fewer than 20: every one stays
    c_old = add_runs(runtime, owners["c"], 40, 10, state="failed")
    c_new = add_runs(runtime, owners["c"], 1, 12)  # 12 new + the 8 newest old ones stay

    report = retention.prune(runtime.db, runtime.settings, batch_size=7)

    left = ids_of(runtime, SyncRun.id)
    assert left == set(a_old[5:]) | set(a_active) | set(b_old) | set(c_old[2:]) | set(c_new)
    assert rows_by_table(report)["sync_runs"] == 5 + 2

    # keeping none per connection: every finished run past the window goes
    report = retention.prune(runtime.db, tuned(runtime.settings, sync_runs_kept_per_connection=0))
    assert ids_of(runtime, SyncRun.id) == set(a_active) | set(c_new)


def test_zero_days_keeps_a_table_for_ever(runtime: Runtime, owners: dict[str, str]):
    add_activity(runtime, 4000, 2)
    add_runs(runtime, owners["a"], 4000, 30)
    settings = tuned(runtime.settings, activity_retention_days=0, sync_run_retention_days=0)

    assert retention.plan(runtime.db, settings).rows == 0
    report = retention.prune(runtime.db, settings)

    assert report.rows == 0
    assert {t.table: t.older_than for t in report.tables}["activity"] is None
    assert count(runtime, SyncRun) == 30


def test_a_dry_run_says_what_would_go_and_changes_nothing(runtime: Runtime, owners: dict[str, str]):
    add_activity(runtime, 200, 4)
    add_callback_delivery(runtime, owners["a"], 10)
    add_delivery(runtime, owners["endpoint"], 40, "delivered", attempts=3)
    add_runs(runtime, owners["a"], 40, 22)
    before = {
        m.__tablename__: count(runtime, m) for m in (Activity, CallbackDelivery, WebhookAttempt, SyncRun)
    }

    planned = retention.plan(runtime.db, runtime.settings)

    assert planned.dry_run
    assert rows_by_table(planned) == {
        "callback_deliveries": 1,
        "activity": 4,
        "webhook_deliveries": 1,
        "webhook_attempts": 3,
        "sync_runs": 2,
        "action_runs": 0,
        "platform_events": 0,
    }
    assert {
        m.__tablename__: count(runtime, m) for m in (Activity, CallbackDelivery, WebhookAttempt, SyncRun)
    } == (before)
    assert rows_by_table(retention.prune(runtime.db, runtime.settings)) == rows_by_table(planned)


# --- bounded batches ---------------------------------------------------------------------------


@pytest.fixture
def statements(runtime: Runtime) -> Iterator[list[tuple[str, int]]]:
    """(statement, rows affected) of every DELETE, and "COMMIT" per committed transaction."""
    seen: list[tuple[str, int]] = []
    engine = runtime.db.engine

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            seen.append((statement, cursor.rowcount))

    def commit(conn: Any) -> None:
        seen.append(("COMMIT", 0))

    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "commit", commit)
    yield seen
    event.remove(engine, "after_cursor_execute", after)
    event.remove(engine, "commit", commit)


def test_each_batch_is_one_short_transaction_of_at_most_batch_size_rows(
    runtime: Runtime, owners: dict[str, str], statements: list[tuple[str, int]]
):
    add_activity(runtime, 365, 25)
    for _ in range(4):
        add_delivery(runtime, owners["endpoint"], 60, "delivered", attempts=2)
    statements.clear()

    report = retention.prune(runtime.db, runtime.settings, batch_size=10)

    deletes = [(s, n) for s, n in statements if s != "COMMIT"]
    activity = [n for s, n in deletes if "FROM activity" in s]
    assert activity == [10, 10, 5]
    assert all(n <= 10 for s, n in deletes if "FROM webhook_deliveries" in s)
    assert sum(n for s, n in deletes if "FROM webhook_attempts" in s) == 8
    # one write transaction per batch: a commit follows every batch's deletes
    batches = sum(t.batches for t in report.tables if t.table in ("activity", "webhook_deliveries"))
    assert batches == 3 + 1
    commits = [i for i, (s, _) in enumerate(statements) if s == "COMMIT"]
    assert len(commits) == batches
    # ranges, not id lists: a handful of statement texts (first, middle, last batch) per table
    assert len({s for s, _ in deletes}) <= 3 * 3


def test_a_pass_stops_at_its_deadline_and_resumes_where_it_stopped(runtime: Runtime, owners: dict[str, str]):
    add_activity(runtime, 365, 30)
    state = retention.PrunePass()

    first = retention.prune(runtime.db, runtime.settings, state=state, deadline=0.0, batch_size=10)

    assert not first.complete
    assert rows_by_table(first)["activity"] == 10  # one batch, then the deadline
    rest = retention.prune(runtime.db, runtime.settings, state=state, batch_size=10)
    assert rest.complete
    assert rows_by_table(rest)["activity"] == 20
    assert count(runtime, Activity) == len(ids_of(runtime, Activity.id)) == count_recent(runtime)


def count_recent(runtime: Runtime) -> int:
    with runtime.db.read() as session:
        return int(session.scalar(select(func.count()).where(Activity.kind != "test.old")) or 0)


def test_every_rule_walks_an_index_led_by_its_order_column(runtime: Runtime):
    inspector = inspect(runtime.db.engine)
    for rule in retention.RULES:
        leading = {ix["column_names"][0] for ix in inspector.get_indexes(rule.name)}
        leading |= {inspector.get_pk_constraint(rule.name)["constrained_columns"][0]}
        assert rule.order in leading, f"{rule.name}.{rule.order} leads no index: pruning would scan"
        for child in rule.children:
            child_leading = {ix["column_names"][0] for ix in inspector.get_indexes(child.table.name)}
            assert child.column in child_leading, child.table.name


# --- the leading process and the command line ---------------------------------------------------


def test_the_leading_ticker_prunes_on_its_interval_and_not_when_off(runtime: Runtime, owners: dict[str, str]):
    from tovplus.worker.ticker import Ticker

    class Dispatcher:
        def sync_runs(self, run_ids: list[str]) -> None: ...

        def webhook_deliveries(self, delivery_ids: list[str]) -> None: ...

        def action_runs(self, run_ids: list[str]) -> None: ...

    add_activity(runtime, 365, 5)
    off = Runtime(
        tuned(runtime.settings, prune_interval_seconds=0), runtime.db, runtime.registry, runtime.keyring
    )
    ticker = Ticker(off, Dispatcher(), "holder-off", interval=0.2)
    ticker.tick_once()
    ticker.stop()
    assert count(runtime, Activity) - count_recent(runtime) == 5

    on = Runtime(
        tuned(runtime.settings, prune_interval_seconds=0.05), runtime.db, runtime.registry, runtime.keyring
    )
    ticker = Ticker(on, Dispatcher(), "holder-on", interval=0.2)
    time.sleep(0.1)
    assert ticker.tick_once().leader
    ticker.stop()
    assert ticker.pruner.passes == 1
    assert count(runtime, Activity) == count_recent(runtime)


def test_pruner_waits_for_its_interval_between_passes(runtime: Runtime):
    clock = [1000.0]
    pruner = retention.Pruner(
        Runtime(
            tuned(runtime.settings, prune_interval_seconds=300), runtime.db, runtime.registry, runtime.keyring
        ),
        clock=lambda: clock[0],
    )
    assert pruner.tick() is None  # the first pass waits a minute after start
    clock[0] += 61
    assert pruner.tick() is not None
    assert pruner.passes == 1
    clock[0] += 100
    assert pruner.tick() is None
    clock[0] += 200
    assert pruner.tick() is not None
    assert pruner.passes == 2


def test_db_prune_command_dry_run_then_prune(
    runtime: Runtime, database_url: str, tmp_path: Path, owners: dict[str, str]
):
    add_activity(runtime, 365, 3)
    env = cli_env(tmp_path / "cli", database_url)

    dry = run_cli("db", "prune", "--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True
    assert {t["table"]: t["rows"] for t in planned["tables"]}["activity"] == 3
    assert count(runtime, Activity) - count_recent(runtime) == 3

    done = run_cli("db", "prune", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("deleted 3 rows")
    assert "activity" in done.stdout
    assert count(runtime, Activity) == count_recent(runtime)


def test_cutoffs_follow_the_settings():
    settings = Settings(callback_dedup_days=7, activity_retention_days=0.5)
    now = datetime(2027, 1, 10, tzinfo=NOW.tzinfo)
    cutoffs = {rule.name: retention.cutoff(rule, settings, now) for rule in retention.RULES}
    assert cutoffs["callback_deliveries"] == now - timedelta(days=7)
    assert cutoffs["activity"] == now - timedelta(hours=12)
    assert cutoffs["sync_runs"] == now - timedelta(days=30)


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's planner, without statistics")
def test_batches_walk_the_order_index_not_a_state_index(runtime: Runtime):
    from sqlalchemy import delete, exists

    from tovplus.services.retention.pruning import eligible

    for rule in retention.RULES:
        conditions = eligible(rule, runtime.settings, NOW, after="a", upto="z")
        for query in (select(exists().where(*conditions)), delete(rule.table).where(*conditions)):
            sql = str(query.compile(runtime.db.engine, compile_kwargs={"literal_binds": True}))
            with runtime.db.engine.connect() as connection:
                plan = [row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
            own = [step for step in plan if f" {rule.name} " in f"{step} "]
            assert own, plan
            assert all(f"({rule.order}>? AND {rule.order}<?)" in step for step in own), plan
