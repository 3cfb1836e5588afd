"""The ``callback.rejected`` entries: a bounded rate per connection, and nothing left unsaid for long.

Per connection and process the log takes a burst of :data:`REJECTED_ACTIVITY_BURST` entries,
then :data:`REJECTED_ACTIVITY_PER_MINUTE` a minute, so a stream of bad secrets cannot flood it.
A rejection over that rate gets no entry of its own: it is held, and the connection's next entry
says how many were held ("3 more rejected since the last entry", with their reasons). When no
further rejection comes to carry them, a flusher thread writes one coalesced entry for them as
soon as the rate allows an entry again, and at the latest :data:`COALESCE_WITHIN_SECONDS` (a
minute) after the first of them; stopping the service writes what is still held.

Whatever the entries say, every rejection is counted in the database (:mod:`.rejections`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from tovplus.db.raw import dbapi_cursor
from tovplus.db.session import Database
from tovplus.db.types import utcnow
from tovplus.runtime.ratelimit import RateLimiter
from tovplus.services.callbacks.batch import TailCursor, Target, Tx
from tovplus.services.callbacks.rejections import (
    RejectedEntry,
    count_rejections,
    insert_rejections,
    minute_of,
)

#: ``callback.rejected`` entries per connection: a burst of this many, then this many a minute.
REJECTED_ACTIVITY_BURST = 3
REJECTED_ACTIVITY_PER_MINUTE = 2
#: A rejection held back by the rate is in an entry at the latest this many seconds later.
COALESCE_WITHIN_SECONDS = 60.0

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Held:
    """A connection's rejections since its last entry, not written yet."""

    target: Target
    first_at: float
    due: float
    count: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def coalesced(self) -> RejectedEntry:
        top = max(sorted(self.reasons), key=lambda r: self.reasons[r])
        return RejectedEntry(self.target, top, self.count, dict(self.reasons), coalesced=True)


class RejectionLog:
    """Counts every rejection and writes the ``callback.rejected`` entries; see the module docstring."""

    def __init__(
        self,
        db: Database,
        *,
        burst: int = REJECTED_ACTIVITY_BURST,
        per_minute: int = REJECTED_ACTIVITY_PER_MINUTE,
        within: float = COALESCE_WITHIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self.limiter = RateLimiter(per_minute, burst=burst, clock=clock)
        self.within = within
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._pruned: dict[str, datetime] = {}  # connection -> the minute its old counts went
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False

    # --- in the batch's transaction (the writer thread) --------------------------------------------

    def record(self, tx: Tx, rejections: list[tuple[Target, str]], now: datetime) -> None:
        """Count ``rejections`` and write the entries the rate allows, in the batch's transaction."""
        count_rejections(tx, rejections, now, self._prune_due(rejections, now))
        entries = self._decide(rejections)
        if entries:
            insert_rejections(tx, entries, now)

    def _prune_due(self, rejections: list[tuple[Target, str]], now: datetime) -> list[str]:
        """The connections whose hour-old counts have not been dropped this minute."""
        minute = minute_of(now)
        due: list[str] = []
        for target, _reason in rejections:
            connection_id = target.connection_id
            if self._pruned.get(connection_id) != minute:
                if len(self._pruned) >= 100_000:
                    self._pruned.clear()
                self._pruned[connection_id] = minute
                due.append(connection_id)
        return due

    def _decide(self, rejections: list[tuple[Target, str]]) -> list[RejectedEntry]:
        """The entries to write now; the rest are held (and the flusher told)."""
        entries: list[RejectedEntry] = []
        started_holding = False
        with self._cond:
            for target, reason in rejections:
                connection_id = target.connection_id
                wait = self.limiter.acquire(connection_id)
                if wait > 0:
                    held = self._held.get(connection_id)
                    if held is None:
                        now = self._clock()
                        held = self._held[connection_id] = _Held(target, now, now + min(wait, self.within))
                        started_holding = True
                    held.count += 1
                    held.reasons[reason] = held.reasons.get(reason, 0) + 1
                    continue
                held = self._held.pop(connection_id, None)
                if held is None:
                    entries.append(RejectedEntry(target, reason))
                else:
                    entries.append(RejectedEntry(target, reason, held.count, dict(held.reasons)))
            if started_holding:
                self._start_flusher()
                self._cond.notify()
        return entries

    # --- the flusher thread --------------------------------------------------------------------------

    def _start_flusher(self) -> None:
        """Start the flusher on first need (the condition's lock is held)."""
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(target=self._run, name="tovplus-callback-rejections", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write every held rejection now and end the flusher. Idempotent."""
        with self._cond:
            self._stopped = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread.is_alive():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                due = self._take_due()
                while not due and not self._stopped:
                    self._cond.wait(self._next_wait())
                    due = self._take_due()
                stopping = self._stopped
                if stopping:
                    due += self._held.values()
                    self._held.clear()
            if due:
                self._write([held.coalesced() for held in due])
            if stopping:
                return

    def _take_due(self) -> list[_Held]:
        """Pop the held rejections whose entry is due: the rate allows one, or the minute is up."""
        now = self._clock()
        out: list[_Held] = []
        for connection_id, held in list(self._held.items()):
            if held.due > now:
                continue
            wait = self.limiter.acquire(connection_id)
            deadline = held.first_at + self.within
            if wait > 0 and now < deadline:
                held.due = min(now + wait, deadline)
                continue
            out.append(self._held.pop(connection_id))
        return out

    def _next_wait(self) -> float | None:
        if not self._held:
            return None
        return max(0.0, min(h.due for h in self._held.values()) - self._clock())

    def _write(self, entries: list[RejectedEntry]) -> None:
        try:
            with self._db.write() as session:
                cursor, dialect = dbapi_cursor(session)
                try:
                    # its own transaction: a deferred statement may as well run at once
                    tx = Tx(session, cursor, dialect, TailCursor(cursor.execute))
                    insert_rejections(tx, entries, utcnow())
                finally:
                    cursor.close()
        except Exception:
            log.exception("could not write %d coalesced callback.rejected entries", len(entries))
