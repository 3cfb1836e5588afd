"""The callback writer's own database connection, held from one batch to the next.

This is the hot path's one trick at the transaction level, kept here. ``db.write()`` would
check a connection out of the pool for every batch (on PostgreSQL with a ``SELECT 1``
pre-ping: one more round trip), build a session and its transaction, and hand the connection
back. The group-commit writer is a single thread that commits batch after batch, so it keeps
one connection instead and only begins and commits on it: the same ``BEGIN IMMEDIATE`` on
SQLite (the engine's ``begin`` hook), the same commit, with the session of a batch joined to
that transaction. In the profile, the pool checkout, check-in and session set-up were about
as much of the writer's Python time as the batch's own checks and SQL.

After :data:`IDLE_SECONDS` without a batch the connection goes back to the pool and the next
batch checks one out as ``db.write()`` would (with PostgreSQL's pre-ping), so a connection the
server dropped while idle is never the one a callback meets. A batch that fails in any way
discards the connection (it may be broken: the database
restarted, the network went), so the pool does not hand it out again; the next batch opens a
fresh one, and a failure costs that batch its 503 and nothing after it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, RootTransaction
from sqlalchemy.orm import Session

from tovplus.db.raw import pipelined
from tovplus.db.session import Database

#: How long the held connection may sit unused before it goes back to the pool.
IDLE_SECONDS = 30.0


class WriterConnection:
    """One connection for the writer thread's batch transactions (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self._engine = db.engine.execution_options(sqlite_begin="IMMEDIATE") if db.is_sqlite else db.engine
        self._connection: Connection | None = None
        self._last_used = 0.0
        self._lock = threading.Lock()  # close() may come from another thread than the writer's
        self._tail: list[tuple[str, Sequence[Any]]] = []

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in a new transaction on the held connection; commits when the block ends
        without an exception, else rolls back and drops the connection."""
        now = time.monotonic()
        if self._connection is not None and now - self._last_used > IDLE_SECONDS:
            self.close()  # idle a while: the pool's checkout (and pre-ping) takes it from here
        with self._lock:
            connection = self._connection
            if connection is None:
                connection = self._connection = self._engine.connect()
            self._last_used = now
        self._tail = []
        try:
            transaction = connection.begin()
            with transaction, Session(bind=connection, expire_on_commit=False) as session:
                yield session
                session.flush()  # the session does not commit a transaction it joined: we do
                self._finish(connection, transaction)
        except BaseException:
            self.close(discard=True)
            raise
        finally:
            self._tail = []

    def defer(self, sql: str, params: Sequence[Any]) -> None:
        """Run ``sql`` at the end of the current transaction, just before its commit.

        For the batch's last writes, whose results nobody reads: on PostgreSQL they go to the
        server with the ``COMMIT`` in one round trip (psycopg's pipeline mode), where each used
        to be a round trip of its own. A failure among them fails the commit, and the batch.
        """
        self._tail.append((sql, params))

    def _finish(self, connection: Connection, transaction: RootTransaction) -> None:
        dbapi = connection.connection.dbapi_connection
        assert dbapi is not None
        cursor = dbapi.cursor()
        try:
            with pipelined(cursor):
                for sql, params in self._tail:
                    cursor.execute(sql, params)
                transaction.commit()  # in the pipeline: sends COMMIT, then reads every result
        finally:
            cursor.close()

    def close(self, *, discard: bool = False) -> None:
        """Give the connection back to the pool, or with ``discard`` close it for good; the next
        transaction opens a new one."""
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is None:
            return
        with contextlib.suppress(Exception):  # already broken: nothing left to give back
            if discard:
                connection.invalidate()
            connection.close()
