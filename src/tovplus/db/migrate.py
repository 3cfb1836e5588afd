"""Apply and inspect migrations programmatically."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
log = logging.getLogger(__name__)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (default: the newest); a current schema is left alone."""
    current = current_revision(engine)
    if revision == "head" and (current == head_revision() or is_ahead(engine)):
        return  # ahead: a newer release migrated first (migrations only add; docs/operations.md)
    log.info("migrating the database from %s to %s", current or "an empty schema", revision)
    _apply(engine, revision)


#: On PostgreSQL a migration waits at most this long for each lock, then starts again (below).
LOCK_TIMEOUT_MS = 200
LOCK_ATTEMPTS = 50


def _apply(engine: Engine, revision: str) -> None:
    """Run the migrations in one transaction, so that running processes keep working meanwhile.

    SQLite: ``BEGIN IMMEDIATE`` waits for the write lock up front (a deferred transaction that
    read first fails at once, "database is locked", when a running process writes meanwhile).
    PostgreSQL: a lock wait gives up after ``LOCK_TIMEOUT_MS`` and the whole migration starts
    again after a pause, so it neither queues the running processes' writes behind it nor
    deadlocks with them (a migration holding one table while waiting for another would make
    PostgreSQL abort one of their transactions instead).
    """
    cfg = alembic_config()
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        try:
            with engine.execution_options(sqlite_begin="IMMEDIATE").begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, revision)
            return
        except OperationalError as exc:
            if (
                getattr(exc.orig, "sqlstate", None) != "55P03" or attempt == LOCK_ATTEMPTS
            ):  # lock_not_available
                raise
            log.info("migration waited too long for a lock (try %d); starting it again", attempt)
            time.sleep(min(1.0, 0.05 * attempt))


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_current(engine: Engine) -> bool:
    """True when the database is at the newest migration."""
    return current_revision(engine) == head_revision()


def is_ahead(engine: Engine) -> bool:
    """True when the database is at a revision this code does not know: a newer release migrated it.
    Migrations only add (tests/db/test_migrations_additive.py), so this code still runs on it."""
    current = current_revision(engine)
    if current is None:
        return False
    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(current)
    except CommandError:
        log.warning("the database is at revision %s, newer than this release knows", current)
        return True
    return False


def is_usable(engine: Engine) -> bool:
    """True when this code can run on the schema: current, or ahead (see :func:`is_ahead`)."""
    return is_current(engine) or is_ahead(engine)
