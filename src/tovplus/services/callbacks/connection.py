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
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection
from sqlalchemy.orm import Session

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
        try:
            with connection.begin(), Session(bind=connection, expire_on_commit=False) as session:
                yield session
                session.flush()  # the session does not commit a transaction it joined: we do
        except BaseException:
            self.close(discard=True)
            raise

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
