"""Rolling upgrades: every migration only adds, and code of the previous schema keeps working while
the newest migration is applied under it (docs/operations.md, "Upgrading a fleet").

A migration that must remove or rename something goes in a later release, after every process runs
code that no longer uses it; add it to ``REMOVALS`` below with the release that stopped using it.
"""

from __future__ import annotations

import ast
import importlib.util
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, insert, select

from tests.db.test_migrations import empty_engine  # noqa: F401 - the fixture
from tovplus.db.ids import new_id
from tovplus.db.migrate import alembic_config, head_revision, is_current, upgrade
from tovplus.db.session import create_db_engine

VERSIONS = Path(alembic_config().get_main_option("script_location") or "") / "versions"
ADDITIVE_OPS = {"create_table", "create_index", "add_column", "batch_alter_table", "f", "get_context"}
#: ``op.execute`` is allowed for SQL that only adds: the migration's module-level SQL constants
#: (upper-case names holding a statement or a tuple of them) must each start with one of these.
ADDITIVE_SQL = ("CREATE TRIGGER ", "CREATE FUNCTION ", "INSERT INTO ")
#: revision -> why its removals are safe (none so far)
REMOVALS: dict[str, str] = {}


def upgrade_calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text())
    (upgrade_fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"]
    return [
        node
        for node in ast.walk(upgrade_fn)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in ("op", "batch_op")
    ]


def executed_sql(path: Path) -> list[str]:
    """The SQL statements ``path`` declares as module-level constants (see ``ADDITIVE_SQL``)."""
    spec = importlib.util.spec_from_file_location(f"migration_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    statements: list[str] = []
    for name, value in vars(module).items():
        if name.isupper() and isinstance(value, str):
            statements.append(value)
        elif name.isupper() and isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            statements.extend(value)
    return statements


@pytest.mark.no_db
def test_every_migration_only_adds_tables_indexes_and_nullable_columns():
    files = sorted(VERSIONS.glob("[0-9]*.py"))
    revisions = {r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    assert len(files) == len(revisions)
    for path in files:
        revision = path.name.split("_", 1)[0]
        if revision in REMOVALS:
            continue
        for call in upgrade_calls(path):
            assert isinstance(call.func, ast.Attribute)
            name = call.func.attr
            if name == "execute":
                sql = executed_sql(path)
                assert sql, f"{path.name}: op.execute runs SQL that is not declared as a constant"
                for statement in sql:
                    assert statement.startswith(ADDITIVE_SQL), f"{path.name}: not additive: {statement[:60]}"
                continue
            assert name in ADDITIVE_OPS, f"{path.name}: op.{name} is not additive (see REMOVALS)"
            if name == "add_column":
                column = next(a for a in call.args if isinstance(a, ast.Call))
                options = {k.arg: k.value for k in column.keywords}
                nullable = options.get("nullable")
                optional = isinstance(nullable, ast.Constant) and nullable.value is True
                assert optional or "server_default" in options, (
                    f"{path.name}: a new column must be nullable or have a server default, "
                    "or processes running the previous release cannot insert rows"
                )


def _old_schema(engine: Engine) -> MetaData:
    """The tables as the previous release's code sees them (reflected at the previous revision)."""
    metadata = MetaData()
    metadata.reflect(
        engine,
        only=[
            "users",
            "occasions",
            "connections",
            "webhook_endpoints",
            "sync_runs",
            "webhook_deliveries",
            "activity",
            "callback_deliveries",
        ],
    )
    return metadata


def _parents(engine: Engine, t: MetaData) -> tuple[str, str]:
    now = datetime.now(UTC).replace(tzinfo=None) if engine.dialect.name == "sqlite" else datetime.now(UTC)
    user, occasion, connection, endpoint = new_id("usr"), new_id("occ"), new_id("con"), new_id("whe")
    with engine.begin() as c:
        c.execute(
            insert(t.tables["users"]).values(id=user, email=f"{user}@x.test", role="planner", created_at=now)
        )
        c.execute(
            insert(t.tables["occasions"]).values(
                id=occasion, name="W", starts_on=now.date(), created_by=user, created_at=now
            )
        )
        c.execute(
            insert(t.tables["connections"]).values(
                id=connection,
                occasion_id=occasion,
                integration_key="printing_partner",
                state="enabled",
                health="unknown",
                health_reasons=[],
                sync_health="unknown",
                sync_health_reasons=[],
                config={},
                scope_type="occasion",
                action_keys=[],
                created_by=user,
                created_at=now,
                updated_at=now,
                version=1,
            )
        )
        c.execute(
            insert(t.tables["webhook_endpoints"]).values(
                id=endpoint,
                occasion_id=occasion,
                url="https://h.example.com",
                event_types=[],
                secret_key_id="k",
                secret_nonce=b"0" * 12,
                secret_ciphertext=b"x",
                state="active",
                created_by=user,
                created_at=now,
            )
        )
    return connection, endpoint


def test_the_previous_release_keeps_writing_while_the_newest_migration_runs(empty_engine: Engine):  # noqa: F811
    head = head_revision()
    script = ScriptDirectory.from_config(alembic_config())
    previous = script.get_revision(head).down_revision if head else None
    if not isinstance(previous, str):
        pytest.skip("only one migration: nothing to roll over")
    upgrade(empty_engine, previous)
    old_engine = create_db_engine(empty_engine.url.render_as_string(hide_password=False))
    t = _old_schema(old_engine)
    connection_id, endpoint_id = _parents(old_engine, t)
    errors: list[BaseException] = []
    written: list[float] = []
    stop = threading.Event()

    def old_release() -> None:
        """What the previous release does: insert and read rows with the columns it knows."""
        try:
            while not stop.is_set():
                now = datetime.now(UTC)
                stamp = now.replace(tzinfo=None) if old_engine.dialect.name == "sqlite" else now
                run_id, delivery_id = new_id("run"), new_id("msg")
                with old_engine.begin() as c:
                    c.execute(
                        insert(t.tables["sync_runs"]).values(
                            id=run_id,
                            connection_id=connection_id,
                            state="succeeded",
                            trigger="schedule",
                            requested_by="system",
                            attempt=1,
                            records_written=0,
                            created_at=stamp,
                        )
                    )
                    c.execute(
                        insert(t.tables["webhook_deliveries"]).values(
                            id=delivery_id,
                            endpoint_id=endpoint_id,
                            event_type="x",
                            payload={},
                            state="delivered",
                            attempt=1,
                            created_at=stamp,
                        )
                    )
                    c.execute(
                        insert(t.tables["callback_deliveries"]).values(
                            connection_id=connection_id,
                            delivery_id=run_id,
                            activity_id=new_id("act"),
                            received_at=stamp,
                        )
                    )
                with old_engine.connect() as c:
                    rows = c.execute(
                        select(t.tables["sync_runs"]).where(t.tables["sync_runs"].c.id == run_id)
                    ).all()
                    assert len(rows) == 1
                written.append(time.monotonic())
                time.sleep(0.005)
        except BaseException as exc:  # reported below
            errors.append(exc)

    writer = threading.Thread(target=old_release)
    writer.start()
    try:
        time.sleep(0.3)
        upgrade(empty_engine)
        migrated_at = time.monotonic()
        time.sleep(0.3)
    finally:
        stop.set()
        writer.join(30)
        old_engine.dispose()
    assert errors == []
    assert is_current(empty_engine)
    assert [w for w in written if w < migrated_at], "the old release wrote nothing before the migration"
    assert len([w for w in written if w > migrated_at]) > 5, "the old release stopped writing after it"
    new = MetaData()
    new.reflect(empty_engine, only=["sync_runs"])
    with empty_engine.connect() as c:
        stored: list[Any] = list(c.execute(select(new.tables["sync_runs"].c.request_id)).scalars())
    assert stored
    assert set(stored) == {None}


def test_a_release_runs_on_a_schema_a_newer_release_migrated_ahead(empty_engine: Engine):  # noqa: F811
    """During a rollout, a process of the previous release may (re)start after the migration."""
    from sqlalchemy import text

    from tovplus.db.migrate import current_revision, is_ahead, is_usable

    upgrade(empty_engine)
    assert is_usable(empty_engine)
    assert not is_ahead(empty_engine)
    with empty_engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    assert is_ahead(empty_engine)
    assert is_usable(empty_engine)
    assert not is_current(empty_engine)
    upgrade(empty_engine)  # nothing to do, and no "Can't locate revision" either
    assert current_revision(empty_engine) == "9999_from_the_future"
    with empty_engine.begin() as c:
        c.execute(text("DELETE FROM alembic_version"))
    assert not is_usable(empty_engine)  # behind (empty): this release must migrate first
