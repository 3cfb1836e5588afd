"""A process's background machinery: queue, tasks, dispatcher, lease keeper, scheduler loop.

* :meth:`BackgroundWorker.run_forever` is ``tovplus worker``: a Huey consumer in the
  foreground; SIGTERM stops it gracefully (running tasks get ``shutdown_timeout`` to finish,
  then the process leaves and the reaper takes their runs back), SIGINT at once.
* :meth:`BackgroundWorker.start` / :meth:`stop` is the embedded mode of ``tovplus serve``:
  the same consumer on threads, but it installs no signal handlers — the web server owns
  SIGTERM/SIGINT and stops this from its shutdown.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any

from huey.consumer import Consumer

from tovplus.runtime import Runtime
from tovplus.services import sync as syncs
from tovplus.worker.engine import RetryScheduler, SyncEngine
from tovplus.worker.queue import create_huey
from tovplus.worker.tasks import HueyDispatcher, Tasks, register_tasks
from tovplus.worker.ticker import Ticker

log = logging.getLogger(__name__)


def worker_identity() -> str:
    """``host:pid:random``: names lease holders in the database."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class _EmbeddedConsumer(Consumer):  # type: ignore[misc]
    """A Huey consumer that leaves the process's signal handlers alone."""

    def _set_signal_handlers(self) -> None:
        return None


def quiet_per_task_logs(level: str) -> None:
    """Huey logs two lines per task and httpx one per request: keep them for DEBUG only (our own
    log line per sync run, with its run and connection ids, stays)."""
    if level == "DEBUG":
        return
    logging.getLogger("huey").setLevel(logging.WARNING)
    logging.getLogger("huey.consumer").setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)


class BackgroundWorker:
    """Builds the queue and tasks for ``rt`` and installs the Huey dispatcher on it."""

    def __init__(self, rt: Runtime, *, threads: int | None = None, scheduler: bool = True) -> None:
        quiet_per_task_logs(rt.settings.log_level)
        self.rt = rt
        self.threads = threads or rt.settings.worker_threads
        self.worker_id = worker_identity()
        self.huey = create_huey(rt.settings)
        self.keeper = syncs.LeaseKeeper(rt, self.worker_id)
        self.tasks: Tasks = register_tasks(
            self.huey, rt, worker_id=self.worker_id, keeper=self.keeper, engine=self._engine_factory()
        )
        self.engine = self.tasks.engine
        self.dispatcher = HueyDispatcher(self.tasks)
        rt.dispatcher = self.dispatcher
        self.ticker = Ticker(rt, self.dispatcher, self.worker_id) if scheduler else None
        self.consumer: Consumer | None = None
        self.shutdown_timeout = min(10.0, rt.settings.lease_seconds)

    def _engine_factory(self) -> Callable[[RetryScheduler], SyncEngine] | None:
        """The sync engine, unless ``sync_concurrency`` is 0 or the queue runs tasks inline
        (``memory://``, where a sync must be done when the call that queued it returns)."""
        concurrency = self.rt.settings.sync_concurrency
        if concurrency == 0 or self.huey.immediate:
            return None
        return lambda schedule_retry: SyncEngine(
            self.rt,
            worker_id=self.worker_id,
            keeper=self.keeper,
            concurrency=concurrency,
            schedule_retry=schedule_retry,
        )

    def _consumer_options(self) -> dict[str, Any]:
        return {
            "workers": self.threads,
            "worker_type": "thread",
            "periodic": False,
            "initial_delay": 0.05,
            "backoff": 1.5,
            "max_delay": 1.0,
            "scheduler_interval": 1,
            "check_worker_health": True,
            "shutdown_timeout": self.shutdown_timeout,
        }

    # --- embedded (serve) -------------------------------------------------------------------------

    def start(self) -> BackgroundWorker:
        if self.engine is not None:
            self.engine.start()
        if not self.huey.immediate:
            self.consumer = _EmbeddedConsumer(self.huey, **self._consumer_options())
            self.consumer.start()
        if self.ticker is not None:
            self.ticker.start()
        log.info("background worker %s started (%d threads)", self.worker_id, self.threads)
        return self

    def stop(self) -> None:
        if self.ticker is not None:
            self.ticker.stop()
        if self.engine is not None:
            self.engine.refuse_new()  # queue threads waiting for room return at once
        if self.consumer is not None:
            self.consumer.stop(graceful=True)
            self.consumer = None
        self._stop_engine()
        self.keeper.stop()
        self._close()
        log.info("background worker %s stopped", self.worker_id)

    # --- standalone (tovplus worker) ----------------------------------------------------------------

    def run_forever(self) -> None:
        """Consume until SIGTERM (graceful) or SIGINT (at once)."""
        consumer = Consumer(self.huey, graceful_signal="TERM", **self._consumer_options())
        self.consumer = consumer
        if self.engine is not None:
            self.engine.start()
        if self.ticker is not None:
            self.ticker.start()
        log.info("worker %s consuming with %d threads", self.worker_id, self.threads)
        try:
            consumer.run()
        finally:
            if self.ticker is not None:
                self.ticker.stop()
            self._stop_engine()
            self.keeper.stop()
            self._close()
            log.info("worker %s stopped", self.worker_id)

    def _stop_engine(self) -> None:
        """Let the runs in flight finish for up to ``shutdown_timeout``; the reaper takes back the rest."""
        if self.engine is not None:
            self.engine.stop(timeout=self.shutdown_timeout)

    def _close(self) -> None:
        try:
            self.huey.storage.close()
        except Exception:
            log.debug("closing the queue storage failed", exc_info=True)


def install_dispatcher(rt: Runtime) -> HueyDispatcher:
    """Give ``rt`` a dispatcher onto the queue without consuming it (``tovplus api``)."""
    huey = create_huey(rt.settings)
    dispatcher = HueyDispatcher(register_tasks(huey, rt, worker_id=worker_identity(), keeper=None))
    rt.dispatcher = dispatcher
    return dispatcher
