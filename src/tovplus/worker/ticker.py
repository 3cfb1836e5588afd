"""The scheduler loop every worker process runs; only the lease holder ticks.

Every ``settings.scheduler_tick_seconds`` it takes (or keeps) the leader lease; the
leader then queues due syncs, reaps expired or overdue runs, turns platform events into
action runs (and reaps those), re-dispatches due webhook deliveries, refreshes OAuth2 grants
that are about to expire (on a thread of its own, under each grant's fenced lease), and updates
the queue-depth gauge. Losing the lease (a long pause, a network split) only means another
process ticks: every step is conditional in the database, so two ticks at once queue
nothing twice.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from tovplus.db.types import utcnow
from tovplus.runtime import Runtime, metrics
from tovplus.services import actions, oauth, sync, webhooks
from tovplus.services.retention import Pruner

log = logging.getLogger(__name__)


class BatchDispatcher(Protocol):
    """What the ticker hands its ids to (the Huey dispatcher, or a test's recorder)."""

    def sync_runs(self, run_ids: list[str]) -> None: ...

    def webhook_deliveries(self, delivery_ids: list[str]) -> None: ...

    def action_runs(self, run_ids: list[str]) -> None: ...


@dataclass
class TickReport:
    """What one :meth:`Ticker.tick_once` did: whether it led, and the ids it dispatched."""

    leader: bool
    scheduled: list[str] = field(default_factory=list)
    reaped: list[str] = field(default_factory=list)
    deliveries: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Ticker:
    """Runs :meth:`tick_once` on a daemon thread until :meth:`stop`."""

    def __init__(
        self,
        rt: Runtime,
        dispatcher: BatchDispatcher,
        holder: str,
        *,
        interval: float | None = None,
    ) -> None:
        self.rt = rt
        self.dispatcher = dispatcher
        self.holder = holder
        self.interval = interval if interval is not None else rt.settings.scheduler_tick_seconds
        #: The lease outlives a few missed ticks, so a busy leader keeps it.
        self.ttl = max(3 * self.interval, 2.0)
        self.leading = False
        self.ticks = 0
        self.pruner = Pruner(rt)  # retention: a pass every prune_interval_seconds, a little per tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresher: threading.Thread | None = None

    def tick_once(self, now: datetime | None = None) -> TickReport:
        """Take or keep the lease; as leader, queue due syncs, reap, and re-dispatch deliveries."""
        started = time.perf_counter()
        now = now or utcnow()
        self.leading = sync.acquire_leadership(self.rt, self.holder, ttl=self.ttl, now=now)
        if not self.leading:
            return TickReport(False, seconds=time.perf_counter() - started)
        report = TickReport(True)
        report.scheduled = sync.tick(self.rt, now=now).run_ids
        self.dispatcher.sync_runs(report.scheduled)
        report.reaped = sync.reap(self.rt, now=now)
        self.dispatcher.sync_runs(report.reaped)
        report.actions, action_deliveries = _action_work(self.rt, now)
        self.dispatcher.action_runs(report.actions)
        report.deliveries = [*action_deliveries, *_due_deliveries(self.rt, now)]
        self.dispatcher.webhook_deliveries(report.deliveries)
        self._refresh_expiring_grants()
        for kind, depth in sync.queue_depth(self.rt).items():
            metrics.QUEUE_DEPTH.labels(kind).set(depth)
        self.pruner.tick(now)  # time-budgeted; logs its own failures
        report.seconds = time.perf_counter() - started
        self.ticks += 1
        if report.scheduled or report.reaped:
            log.info(
                "scheduler tick: %d runs queued, %d taken back, %d deliveries due (%.0f ms)",
                len(report.scheduled),
                len(report.reaped),
                len(report.deliveries),
                report.seconds * 1000,
            )
        return report

    def _refresh_expiring_grants(self) -> None:
        """Refresh grants about to expire on a thread, one pass at a time (token calls can be slow)."""
        if self._refresher is not None and self._refresher.is_alive():
            return

        def run() -> None:
            try:
                oauth.refresh_expiring(self.rt, owner=self.holder)
            except Exception:
                log.exception("refreshing OAuth2 grants ahead of expiry failed")

        self._refresher = threading.Thread(target=run, name="tovplus-oauth-refresh", daemon=True)
        self._refresher.start()

    def start(self) -> Ticker:
        """Tick on a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="tovplus-scheduler", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick_once()
            except Exception:  # the database is away: try again next tick
                log.exception("scheduler tick failed")
            self._stop.wait(self.interval)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop ticking and give the leader lease up, if held."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.leading:
            try:
                sync.release_leadership(self.rt, self.holder)
            except Exception:
                log.warning("could not release the scheduler lease", exc_info=True)
            self.leading = False


def _action_work(rt: Runtime, now: datetime) -> tuple[list[str], list[str]]:
    """Platform events turned into action runs, and action runs taken back: ``(runs, deliveries)``."""
    queued = actions.dispatch_platform_events(rt, now=now)
    reaped, deliveries = actions.reap_action_runs(rt, now=now)
    return list(dict.fromkeys([*queued, *reaped])), deliveries


def _due_deliveries(rt: Runtime, now: datetime) -> list[str]:
    return list(webhooks.requeue_due_deliveries(rt, now))
