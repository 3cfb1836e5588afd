"""A process-wide lock that lets one thread at a time open a write transaction on SQLite.

SQLite takes one writer at a time anyway; threads that each ``BEGIN IMMEDIATE`` at once spend
their wait asleep in SQLite's busy handler, which polls with growing sleeps. Queueing on a
Python lock first hands the turn on the moment the previous writer commits. On PostgreSQL
:func:`locked_write` is plain ``db.write()``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from tovplus.db.session import Database

_write_locks: weakref.WeakKeyDictionary[Database, threading.Lock] = weakref.WeakKeyDictionary()
_write_locks_guard = threading.Lock()


def write_lock(db: Database) -> threading.Lock:
    """The one lock this process's SQLite writers to ``db`` queue on (made on first use)."""
    with _write_locks_guard:
        lock = _write_locks.get(db)
        if lock is None:
            lock = _write_locks[db] = threading.Lock()
    return lock


@contextmanager
def locked_write(db: Database) -> Iterator[Session]:
    """``db.write()``; on SQLite, after taking :func:`write_lock` so writers take turns at once."""
    if not db.is_sqlite:
        with db.write() as session:
            yield session
        return
    with write_lock(db), db.write() as session:
        yield session
