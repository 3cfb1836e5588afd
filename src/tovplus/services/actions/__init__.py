"""Actions: durable runs of what adapters push to their partners, queued by planners and events.

A run is a row in ``action_runs`` (``queued`` → ``running`` → ``succeeded`` | ``failed``, or back to
``queued`` for a retry); the queue only carries "run action run X".

* ``runs``: asking for a run (:func:`request_action`; idempotency keys, coalescing);
* ``claim``: taking a queued run with a lease, with what ``perform`` needs;
* ``execute``: the adapter's ``perform``, outside any transaction (:func:`execute_action_run`);
* ``finish``: the one finishing transaction, conditional on still holding the run;
* ``subscriptions``: platform events → the subscribed actions (:func:`dispatch_platform_events`);
* ``reaper``: runs whose worker died, and lost queue messages;
* ``views``: the ``ActionRun`` view and reading runs;
* ``demo``: what ``make run`` says about actions.
"""

from __future__ import annotations

from tovplus.services.actions.demo import demo_hints
from tovplus.services.actions.execute import ActionOutcome, call_perform, context, execute_action_run
from tovplus.services.actions.finish import ACTION_COMPLETED_EVENT, ACTION_FAILED_EVENT, Attempt
from tovplus.services.actions.reaper import reap_action_runs
from tovplus.services.actions.runs import Requested, missing_keys, request_action
from tovplus.services.actions.subscriptions import dispatch_platform_events, subscriptions_of
from tovplus.services.actions.views import ActionRunModel, get_run, list_runs, run_view

__all__ = [
    "ACTION_COMPLETED_EVENT",
    "ACTION_FAILED_EVENT",
    "ActionOutcome",
    "ActionRunModel",
    "Attempt",
    "Requested",
    "call_perform",
    "context",
    "demo_hints",
    "dispatch_platform_events",
    "execute_action_run",
    "get_run",
    "list_runs",
    "missing_keys",
    "reap_action_runs",
    "request_action",
    "run_view",
    "subscriptions_of",
]
