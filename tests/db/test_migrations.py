"""Models and migrations agree, migrations run from an empty database, and there is one head.

Runs on the backend of the pass (SQLite, then PostgreSQL), so both dialects are compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from tests.conftest import BACKEND
from tovplus.db.migrate import alembic_config, current_revision, head_revision, is_current, upgrade
from tovplus.db.models import Base
from tovplus.db.session import create_db_engine


@pytest.fixture
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """An engine on a brand-new, empty database of the backend under test."""
    if BACKEND == "postgresql":
        url = request.getfixturevalue("postgres").create()
    else:
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = create_db_engine(url)
    yield engine
    engine.dispose()


def differences(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "target_metadata": Base.metadata}
        )
        return list(compare_metadata(context, Base.metadata))


def app_tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


@pytest.mark.no_db
def test_migrations_have_a_single_linear_history():
    script = ScriptDirectory.from_config(alembic_config())
    heads = script.get_heads()
    assert len(heads) == 1, f"several migration heads: {heads}; merge them or fix down_revision"
    assert script.get_bases() == ["0001"]
    revisions = list(script.walk_revisions())
    assert len({r.revision for r in revisions}) == len(revisions)
    for revision in revisions:
        assert not revision.is_merge_point, f"{revision.revision} merges branches"
        assert not revision.is_branch_point, f"{revision.revision} starts a branch"
    assert head_revision() == heads[0]


def test_models_and_migrations_agree(database_url: str):
    """``alembic revision --autogenerate`` would find nothing to do on a migrated database."""
    engine = create_db_engine(database_url)
    try:
        assert is_current(engine)
        diff = differences(engine)
        assert diff == [], "models.py and the migrations differ:\n" + "\n".join(map(repr, diff))
    finally:
        engine.dispose()


def test_upgrade_from_an_empty_database_builds_the_whole_schema(empty_engine: Engine):
    assert current_revision(empty_engine) is None
    assert not is_current(empty_engine)
    assert app_tables(empty_engine) == set()

    upgrade(empty_engine)

    assert current_revision(empty_engine) == head_revision()
    assert is_current(empty_engine)
    assert app_tables(empty_engine) == set(Base.metadata.tables)
    assert differences(empty_engine) == []

    upgrade(empty_engine)  # running it again changes nothing
    assert current_revision(empty_engine) == head_revision()


def test_every_migration_downgrades_and_upgrades_again(empty_engine: Engine):
    upgrade(empty_engine)
    from alembic import command

    config = alembic_config()
    with empty_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert app_tables(empty_engine) == set()
    assert current_revision(empty_engine) is None

    upgrade(empty_engine)
    assert is_current(empty_engine)
    assert differences(empty_engine) == []


def test_the_indexes_the_scheduler_and_lists_rely_on_exist(database_url: str):
    engine = create_db_engine(database_url)
    try:
        inspector = inspect(engine)

        def indexed(table: str) -> set[tuple[str, ...]]:
            return {tuple(ix["column_names"]) for ix in inspector.get_indexes(table)}  # type: ignore[arg-type]

        assert ("state", "next_sync_at") in indexed("connections")
        assert ("occasion_id", "id") in indexed("connections")
        assert ("occasion_id", "id") in indexed("events")
        assert ("occasion_id", "id") in indexed("guests")
        assert ("state", "next_attempt_at") in indexed("webhook_deliveries")
        assert ("occasion_id", "id") in indexed("activity")
    finally:
        engine.dispose()
