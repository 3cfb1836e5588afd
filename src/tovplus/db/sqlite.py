"""SQLite-only machinery: what an embedded database needs beside the engine's own settings.

* :class:`WalCheckpointer` keeps the write-ahead log short from a thread of its own, so the
  callback writer's commits do not pay for SQLite's automatic checkpoint.

The engine's connection settings (WAL mode, ``synchronous``, ``BEGIN IMMEDIATE`` for writers)
are in :mod:`tovplus.db.session`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

log = logging.getLogger(__name__)


class WalCheckpointer:
    """Checkpoints SQLite's write-ahead log from a thread of its own.

    SQLite checkpoints automatically inside the commit that pushes the WAL past 1,000
    pages, so one unlucky batch would also pay for copying pages into the database file
    and fsyncing it (tens of milliseconds): the hot path's p99. This thread runs a
    ``PASSIVE`` checkpoint (it never blocks or waits for writers) every ``interval``
    seconds while ``progress()`` (e.g. a writer's count of committed batches) moves,
    which keeps the WAL short enough that the automatic one rarely fires.
    """

    def __init__(self, engine: Engine, progress: Callable[[], int], interval: float = 0.25) -> None:
        self._engine = engine
        self._progress = progress
        self._interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0

    @property
    def started(self) -> bool:
        """Whether :meth:`start` has run."""
        return self._thread is not None

    def start(self) -> None:
        """Start the thread (once; later calls do nothing)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tovplus-wal-checkpoint", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (up to 10 s)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        seen = self._progress()
        while not self._stopping.wait(self._interval):
            now = self._progress()
            if now == seen:
                continue
            seen = now
            try:
                connection = self._engine.raw_connection()
                try:
                    connection.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                finally:
                    connection.close()
            except Exception as exc:  # a busy or broken database: the automatic checkpoint still works
                log.warning("background WAL checkpoint failed: %s", exc)
