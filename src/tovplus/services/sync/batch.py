"""Claiming and finishing many runs in one write transaction each (the sync engine's two writers).

On SQLite's single writer the cost of a sync is mostly its two transactions (claim, then
finish); doing them a batch at a time shares that cost the way callbacks share theirs
(:mod:`tovplus.runtime.group_commit`). Each run keeps the guarantees of :func:`claim_run`
and :func:`finish_run`: the claim is conditional, and a run found taken over rolls back alone
(its own savepoint) while the rest of the batch commits.

Rows are touched in id order, so two processes' batches cannot deadlock on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from tovplus.db.types import utcnow
from tovplus.db.write_lock import locked_write
from tovplus.runtime import Runtime
from tovplus.services.sync.finish import finish_in
from tovplus.services.sync.lease import Claim, claim_in
from tovplus.services.sync.outcome import RunOutcome, Verdict


def claim_runs(rt: Runtime, run_ids: Sequence[str], worker_id: str) -> list[Claim | RunOutcome]:
    """Claim every run of ``run_ids`` in one transaction; one answer per id, in the order given.

    An id given twice is claimed once (the second answer is ``skipped``: the run is running).
    """
    now = utcnow()
    answers: dict[int, Claim | RunOutcome] = {}
    with locked_write(rt.db) as session:
        for index in sorted(range(len(run_ids)), key=lambda i: run_ids[i]):
            answers[index] = claim_in(rt, session, run_ids[index], worker_id, now)
    return [answers[i] for i in range(len(run_ids))]


def finish_runs(
    rt: Runtime, attempts: Sequence[tuple[Claim, Verdict]], *, worker_id: str
) -> list[RunOutcome]:
    """Write every attempt's result in one transaction; one outcome per attempt, in the order given.

    Connections are locked in id order (each has at most one active run, so two batches never
    hold the same one). A run whose lease was taken over comes back ``lost`` and writes nothing.
    """
    outcomes: dict[int, RunOutcome] = {}
    with locked_write(rt.db) as session:
        for index in sorted(range(len(attempts)), key=lambda i: attempts[i][0].connection_id):
            claim, verdict = attempts[index]
            outcomes[index] = finish_in(rt, session, claim, verdict, worker_id=worker_id, now=utcnow())
    return [outcomes[i] for i in range(len(attempts))]
