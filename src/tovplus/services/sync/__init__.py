"""Sync runs: requesting, claiming, running and finishing them; the scheduler that queues them.

A run is a row in ``sync_runs`` (``queued`` → ``running`` → ``succeeded`` | ``failed``, or back
to ``queued`` for a retry). The queue only carries "run sync run X"; this package decides
everything else:

* ``runs``: asking for a sync (at most one active run per connection);
* ``retry``: sync intervals, retry delays and their jitter;
* ``lease``: claiming a run with a lease (:func:`claim_run`) and renewing it (:class:`LeaseKeeper`);
* ``execute``: the adapter call, outside any transaction (:func:`execute_run`);
* ``batch``: claiming and finishing many runs per transaction (the worker's sync engine);
* ``finish``: the one finishing transaction, conditional on still holding the lease;
* ``run_health``: health while a run retries, failures in a row and the paused schedule,
  folding routine successes in the activity log;
* ``history``: the run history view (:class:`SyncRunModel`);
* ``scheduler``: due connections, the reaper and the scheduler's leader lease.

The partner HTTP client lives in :mod:`tovplus.runtime.partner_http` and the SQLite write lock
in :mod:`tovplus.db.write_lock`; both are re-exported here for existing callers.
"""

from __future__ import annotations

from tovplus.db.states import ACTIVE_SYNC_STATES as ACTIVE_STATES
from tovplus.runtime.partner_http import PARTNER_RESPONSE_LIMIT_BYTES, partner_http_client
from tovplus.runtime.partner_http import close_partner_http_clients as close_http_clients
from tovplus.services.sync.batch import RunWrite, claim_runs, finish_runs, write_runs
from tovplus.services.sync.execute import call_adapter, execute_run, report_outcome, run_adapter
from tovplus.services.sync.finish import MAX_ERROR_CHARS, SYNC_COMPLETED_EVENT, UNREADABLE_REASON, finish_run
from tovplus.services.sync.history import SyncRunModel, list_sync_runs, shown_state, sync_run_view
from tovplus.services.sync.lease import Claim, LeaseKeeper, claim_run
from tovplus.services.sync.outcome import OutcomeState, RunOutcome, Verdict, VerdictKind
from tovplus.services.sync.retry import JITTER, max_attempts, retry_delay, sync_interval
from tovplus.services.sync.runs import (
    SYSTEM,
    active_run_id,
    enqueue_run,
    request_sync,
    resume_schedule,
    retry_now,
)
from tovplus.services.sync.scheduler import (
    LEADER_LEASE,
    TICK_LIMIT,
    TickResult,
    acquire_leadership,
    current_leader,
    due_connections,
    queue_depth,
    reap,
    release_leadership,
    tick,
)

__all__ = [
    "ACTIVE_STATES",
    "JITTER",
    "LEADER_LEASE",
    "MAX_ERROR_CHARS",
    "PARTNER_RESPONSE_LIMIT_BYTES",
    "SYNC_COMPLETED_EVENT",
    "SYSTEM",
    "TICK_LIMIT",
    "UNREADABLE_REASON",
    "Claim",
    "LeaseKeeper",
    "OutcomeState",
    "RunOutcome",
    "RunWrite",
    "SyncRunModel",
    "TickResult",
    "Verdict",
    "VerdictKind",
    "acquire_leadership",
    "active_run_id",
    "call_adapter",
    "claim_run",
    "claim_runs",
    "close_http_clients",
    "current_leader",
    "due_connections",
    "enqueue_run",
    "execute_run",
    "finish_run",
    "finish_runs",
    "list_sync_runs",
    "max_attempts",
    "partner_http_client",
    "queue_depth",
    "reap",
    "release_leadership",
    "report_outcome",
    "request_sync",
    "resume_schedule",
    "retry_delay",
    "retry_now",
    "run_adapter",
    "shown_state",
    "sync_interval",
    "sync_run_view",
    "tick",
    "write_runs",
]
