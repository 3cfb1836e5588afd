"""The queue tasks, thin: each runs one service call for one id.

* ``integrations.sync_partner_state(run_id)`` → the process's sync engine
  (:mod:`tovplus.worker.engine`), or :func:`tovplus.services.sync.execute_run` on the queue's
  thread without one (a retry either asks for is scheduled on the queue for its ``retry_at``);
* ``webhooks.deliver(delivery_id)`` → :func:`tovplus.services.webhooks.deliver`;
* ``webhooks.deliver_many(delivery_ids)`` → :func:`tovplus.services.webhooks.deliver_many` (one
  claim and one outcome transaction for the lot; what the reaper's requeues go out as);
* ``integrations.perform_action(run_id)`` → :func:`tovplus.services.actions.execute_action_run`
  (a retry likewise).

:class:`HueyDispatcher` is the :class:`~tovplus.runtime.dispatch.Dispatcher` the services
use to say "run this now". A queue that cannot be reached is logged and otherwise ignored:
the row is already committed, and the scheduler's reaper hands it out again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from huey import Huey

from tovplus.db.models import SyncRun, WebhookDelivery
from tovplus.db.types import utcnow
from tovplus.runtime import Runtime, trace
from tovplus.services import actions, webhooks
from tovplus.services import sync as syncs
from tovplus.worker.engine import RetryScheduler, SyncEngine
from tovplus.worker.queue import enqueue_many

log = logging.getLogger(__name__)

SYNC_TASK = "integrations.sync_partner_state"
DELIVER_TASK = "webhooks.deliver"
DELIVER_MANY_TASK = "webhooks.deliver_many"
#: How many delivery ids one ``webhooks.deliver_many`` task carries (small enough that the
#: queue's threads share a long list of due deliveries).
DELIVERIES_PER_TASK = 25
ACTION_TASK = "integrations.perform_action"


@dataclass
class Tasks:
    """The Huey instance and the tasks registered on it."""

    huey: Huey
    sync_partner_state: Any
    deliver: Any
    perform_action: Any = None
    #: The batch delivery task (``None`` where tasks were built without one).
    deliver_many: Any = None
    #: The sync engine the sync task hands its runs to, if any.
    engine: SyncEngine | None = None


def register_tasks(
    huey: Huey,
    rt: Runtime,
    *,
    worker_id: str,
    keeper: syncs.LeaseKeeper | None,
    engine: Callable[[RetryScheduler], SyncEngine] | None = None,
) -> Tasks:
    """Register both tasks on ``huey``, bound to ``rt`` (every process registers the same names).

    With ``engine`` (a factory given the retry scheduler), the sync task only hands its run id to
    the :class:`~tovplus.worker.engine.SyncEngine` it builds, blocking while the engine is full;
    without, it runs the sync end to end on the queue's thread."""

    def schedule_retry(run_id: str, retry_at: datetime) -> None:
        delay = max(0.0, (retry_at - utcnow()).total_seconds())
        try:
            sync_partner_state.schedule((run_id,), delay=delay)
        except Exception:  # the reaper finds the queued run when it is due
            log.warning("could not schedule the retry of sync run %s", run_id, exc_info=True)

    sync_engine = engine(schedule_retry) if engine is not None else None

    @huey.task(name=SYNC_TASK)  # type: ignore[untyped-decorator]
    def sync_partner_state(run_id: str) -> None:
        if sync_engine is not None:
            sync_engine.submit(run_id)  # the engine binds the run's request id once it claims it
            return
        run_inline(run_id)

    @trace.bound_to_row(rt.db, SyncRun)  # the request id of whoever queued it, in logs and headers
    def run_inline(run_id: str) -> None:
        outcome = syncs.execute_run(rt, run_id, worker_id=worker_id, keeper=keeper)
        if outcome.state == syncs.OutcomeState.RETRYING and outcome.retry_at is not None:
            schedule_retry(run_id, outcome.retry_at)

    @huey.task(name=DELIVER_TASK)  # type: ignore[untyped-decorator]
    @trace.bound_to_row(rt.db, WebhookDelivery)
    def deliver(delivery_id: str) -> None:
        webhooks.deliver(rt, delivery_id, worker_id=worker_id)

    @huey.task(name=DELIVER_MANY_TASK)  # type: ignore[untyped-decorator]
    def deliver_many(delivery_ids: list[str]) -> None:
        webhooks.deliver_many(rt, delivery_ids, worker_id=worker_id)

    @huey.task(name=ACTION_TASK)  # type: ignore[untyped-decorator]
    def perform_action(run_id: str) -> None:
        outcome = actions.execute_action_run(rt, run_id, worker_id=worker_id)
        _schedule_retry(perform_action, run_id, outcome.retry_at if outcome.state == "retrying" else None)

    return Tasks(huey, sync_partner_state, deliver, perform_action, deliver_many, sync_engine)


def _schedule_retry(task: Any, run_id: str, retry_at: Any) -> None:
    """Schedule ``task(run_id)`` for ``retry_at`` (the reaper finds the run if this fails)."""
    if retry_at is None:
        return
    try:
        task.schedule((run_id,), delay=max(0.0, (retry_at - utcnow()).total_seconds()))
    except Exception:
        log.warning("could not schedule the retry of %s", run_id, exc_info=True)


class HueyDispatcher:
    """Hands ids to the queue (a ``Dispatcher``); batches go in one storage transaction."""

    def __init__(self, tasks: Tasks) -> None:
        self.tasks = tasks
        self.huey = tasks.huey

    def sync_run(self, run_id: str) -> None:
        """Queue one sync run."""
        self.sync_runs([run_id])

    def webhook_delivery(self, delivery_id: str) -> None:
        """Queue one webhook delivery."""
        self.webhook_deliveries([delivery_id])

    def action_run(self, run_id: str) -> None:
        """Queue one action run."""
        self.action_runs([run_id])

    def action_runs(self, run_ids: Sequence[str]) -> None:
        """Queue action runs, in one storage transaction."""
        self._enqueue(self.tasks.perform_action, run_ids)

    def sync_runs(self, run_ids: Sequence[str]) -> None:
        """Queue sync runs, in one storage transaction."""
        self._enqueue(self.tasks.sync_partner_state, run_ids)

    def webhook_deliveries(self, delivery_ids: Sequence[str]) -> None:
        """Queue webhook deliveries, in one storage transaction: one, as a ``webhooks.deliver``
        task; more, :data:`DELIVERIES_PER_TASK` to a ``webhooks.deliver_many`` task."""
        if len(delivery_ids) <= 1 or self.tasks.deliver_many is None:
            self._enqueue(self.tasks.deliver, delivery_ids)
            return
        ids = list(delivery_ids)
        chunks = [ids[i : i + DELIVERIES_PER_TASK] for i in range(0, len(ids), DELIVERIES_PER_TASK)]
        try:
            enqueue_many(self.huey, [self.tasks.deliver_many.s(chunk) for chunk in chunks])
        except Exception:
            log.warning("could not queue %d webhook deliveries; the reaper will", len(ids), exc_info=True)

    def _enqueue(self, task: Any, ids: Sequence[str]) -> None:
        if not ids:
            return
        try:
            enqueue_many(self.huey, [task.s(i) for i in ids])
        except Exception:
            log.warning("could not queue %d %s task(s); the reaper will", len(ids), task.name, exc_info=True)
