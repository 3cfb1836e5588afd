"""How services hand work to the queue without importing it.

Our tables are the truth (a queued sync run, a pending webhook delivery); the
queue only carries "run this now". The worker installs a Huey-backed dispatcher;
without one, nothing is lost: the scheduler and the reaper find the rows.
"""

from __future__ import annotations

from typing import Protocol


class Dispatcher(Protocol):
    def sync_run(self, run_id: str) -> None: ...

    def webhook_delivery(self, delivery_id: str) -> None: ...

    def action_run(self, run_id: str) -> None: ...


class NullDispatcher:
    """Leaves the rows for the scheduler and the reaper to pick up."""

    def sync_run(self, run_id: str) -> None:
        return None

    def webhook_delivery(self, delivery_id: str) -> None:
        return None

    def action_run(self, run_id: str) -> None:
        return None
