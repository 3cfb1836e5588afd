"""The leading process's pruning: a pass every ``prune_interval_seconds``, a little per tick.

The ticker calls :meth:`Pruner.tick` on every tick it leads. A pass starts once the interval
has passed (the first a minute after start, at most) and spends at most
``prune_tick_budget_seconds`` per tick (never more than half a tick), so the scheduler's own
work and its lease never wait on a large backlog: an unfinished pass resumes next tick where
it stopped. A failure is logged and the pass is tried again at the next interval.

Each tick also folds the admin summary's connection counts (``counts``)
once enough delta rows have piled up, whether or not pruning is enabled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from tovplus.runtime import Runtime
from tovplus.services.retention.counts import fold_counts
from tovplus.services.retention.pruning import PrunePass, PruneReport, prune

log = logging.getLogger(__name__)

#: The first pass of a process waits at most this long after start.
FIRST_PASS_AFTER_SECONDS = 60.0


class Pruner:
    """Rate-limited, time-budgeted, resumable pruning passes for one leading process."""

    def __init__(self, rt: Runtime, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rt = rt
        self._clock = clock
        self._pass: PrunePass | None = None
        interval = rt.settings.prune_interval_seconds
        self._next_pass_at = clock() + min(interval, FIRST_PASS_AFTER_SECONDS)
        self.passes = 0

    @property
    def enabled(self) -> bool:
        return self.rt.settings.prune_interval_seconds > 0

    def fold_counts(self) -> None:
        """Fold the connection counts' delta rows (cheap when there are few; logs its own failure)."""
        try:
            fold_counts(self.rt.db)
        except Exception:  # the database is away or locked too long: the next tick tries again
            log.exception("folding the connection counts failed; retrying at the next tick")

    def budget(self) -> float:
        settings = self.rt.settings
        return min(settings.prune_tick_budget_seconds, settings.scheduler_tick_seconds / 2)

    def tick(self, now: datetime | None = None) -> PruneReport | None:
        """Prune a little if a pass is due or under way; the report of this tick's share, else None."""
        self.fold_counts()
        if not self.enabled:
            return None
        started = self._clock()
        if self._pass is None:
            if started < self._next_pass_at:
                return None
            self._pass = PrunePass(now) if now is not None else PrunePass()
            self._next_pass_at = started + self.rt.settings.prune_interval_seconds
        try:
            report = prune(self.rt.db, self.rt.settings, state=self._pass, deadline=started + self.budget())
        except Exception:  # the database is away or locked too long: the next interval tries again
            log.exception("pruning failed; retrying at the next interval")
            self._pass = None
            return None
        if report.rows:
            log.info(
                "pruned %d rows (%s)",
                report.rows,
                ", ".join(f"{t.table}={t.rows}" for t in report.tables if t.rows),
            )
        if report.complete:
            self._pass = None
            self.passes += 1
        return report
