"""Engines and sessions.

SQLite runs in WAL mode; write transactions start with ``BEGIN IMMEDIATE`` so two
writers queue on the lock instead of failing on a read-to-write upgrade. Use
``db.read()`` for read-only work and ``db.write()`` for anything that writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tovplus.db.private_files import create_private_file


def _normalise_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


#: What the write-ahead log is cut back to after a checkpoint resets it.
WAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024


def create_db_engine(url: str, *, sqlite_synchronous: str = "NORMAL", pool_size: int = 10) -> Engine:
    """An engine for ``url`` with the project's connection settings."""
    url = _normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            create_private_file(Path(parsed.database))  # 0600, so its -wal and -shm are too
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size * 2,
        )
        synchronous = "FULL" if sqlite_synchronous == "FULL" else "NORMAL"

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # A WAL file keeps its high-water size on disk; after a checkpoint resets it, SQLite
            # truncates it to this, so one burst (a prune batch, a long reader) does not leave the
            # embedded database megabytes larger for good (``make soak``'s size verdict).
            cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True)


def describe_database_error(exc: SQLAlchemyError) -> str:
    """One line saying why the database cannot be used (for the command line; no password)."""
    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return f"TOVPLUS_DATABASE_URL is not a database URL this build can use ({exc})"
    reason = str(exc.orig) if isinstance(exc, DBAPIError) and exc.orig is not None else str(exc)
    lines = [line.strip() for line in reason.splitlines() if line.strip()]
    return "cannot use the database: " + (lines[0] if lines else type(exc).__name__)


class Database:
    """The process's database: an engine and read/write session factories."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "NORMAL", pool_size: int = 10) -> None:
        self.url = _normalise_url(url)
        self.engine = create_db_engine(self.url, sqlite_synchronous=sqlite_synchronous, pool_size=pool_size)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        writer = self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else self.engine
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(writer, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads; it never commits."""
        with self._reader() as session:
            yield session

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A session for reads that all see one snapshot of the database: ``REPEATABLE READ`` on
        PostgreSQL (a read-only transaction there never fails for it); a SQLite read transaction
        already keeps the snapshot its first read took until it ends."""
        with self._reader() as session:
            if not self.is_sqlite:
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction commits when the block ends without an exception."""
        with self._writer() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
