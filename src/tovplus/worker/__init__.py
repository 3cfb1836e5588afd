"""Background work: the Huey queue, its tasks, the scheduler loop and the process runners.

The queue only carries ids ("run sync run X", "deliver delivery Y"); the rows in our
tables are the truth. See ``tovplus.services.sync`` and ``tovplus.services.sync.scheduler`` for
the rules, and :class:`~tovplus.worker.runner.BackgroundWorker` for how a process runs them.
"""

from __future__ import annotations

from tovplus.worker.queue import create_huey, enqueue_many
from tovplus.worker.runner import BackgroundWorker, install_dispatcher, worker_identity
from tovplus.worker.tasks import (
    ACTION_TASK,
    DELIVER_MANY_TASK,
    DELIVER_TASK,
    SYNC_TASK,
    HueyDispatcher,
    register_tasks,
)
from tovplus.worker.ticker import Ticker

__all__ = [
    "ACTION_TASK",
    "DELIVER_MANY_TASK",
    "DELIVER_TASK",
    "SYNC_TASK",
    "BackgroundWorker",
    "HueyDispatcher",
    "Ticker",
    "create_huey",
    "enqueue_many",
    "install_dispatcher",
    "register_tasks",
    "worker_identity",
]
