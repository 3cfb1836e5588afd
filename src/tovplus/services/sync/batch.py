"""Claiming and finishing many runs per write transaction (the sync engine's writers).

On SQLite's single writer the cost of a sync is mostly its two transactions (claim, then
finish); doing them a batch at a time shares that cost the way callbacks share theirs
(:mod:`tovplus.runtime.group_commit`). :func:`write_runs` goes further and takes claims and
finishes in the *same* transaction, so one writer thread pays one lock hand-over, one ``BEGIN``
and one ``COMMIT`` for both halves of many syncs. Each run keeps the guarantees of
:func:`claim_run` and :func:`finish_run`: the claim is conditional, and a run found taken over
rolls back alone (its own savepoint) while the rest of the batch commits. A batch looks each
occasion's webhook endpoints up once (:func:`tovplus.services.webhooks.endpoints_remembered`): a
first sync emits three events, and the look-up (with the ORM flush it caused) was a third of the
writer's time in the profile (docs/benchmarks.md).

Rows are touched in id order within each half (finishes by connection id, then claims by run
id), so two processes' batches of one kind cannot deadlock on PostgreSQL; there the engine keeps
claims and finishes in separate writers (:mod:`tovplus.worker.engine`), so no batch mixes them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from tovplus.db.types import utcnow
from tovplus.db.write_lock import locked_write
from tovplus.runtime import Runtime, trace
from tovplus.services import webhooks
from tovplus.services.sync.finish import finish_in
from tovplus.services.sync.lease import Claim, claim_in
from tovplus.services.sync.outcome import RunOutcome, Verdict

#: A job for :func:`write_runs`: a run id to claim, or an attempt to finish.
RunWrite = str | tuple[Claim, Verdict]


def claim_runs(rt: Runtime, run_ids: Sequence[str], worker_id: str) -> list[Claim | RunOutcome]:
    """Claim every run of ``run_ids`` in one transaction; one answer per id, in the order given.

    An id given twice is claimed once (the second answer is ``skipped``: the run is running).
    """
    return write_runs(rt, run_ids, worker_id=worker_id)


def finish_runs(
    rt: Runtime, attempts: Sequence[tuple[Claim, Verdict]], *, worker_id: str
) -> list[RunOutcome]:
    """Write every attempt's result in one transaction; one outcome per attempt, in the order given.

    Connections are locked in id order (each has at most one active run, so two batches never
    hold the same one). A run whose lease was taken over comes back ``lost`` and writes nothing.
    """
    return write_runs(rt, attempts, worker_id=worker_id)  # type: ignore[return-value]


def write_runs(rt: Runtime, jobs: Sequence[RunWrite], *, worker_id: str) -> list[Claim | RunOutcome]:
    """Finish the attempts and claim the run ids of ``jobs`` in one transaction (finishes first,
    so a run finished and claimed again in one batch sees its own end); one answer per job, in
    the order given: a claim's :class:`Claim` or why not, a finish's :class:`RunOutcome`."""
    finishes = sorted((i for i, j in enumerate(jobs) if not isinstance(j, str)), key=lambda i: _key(jobs[i]))
    claims = sorted((i for i, j in enumerate(jobs) if isinstance(j, str)), key=lambda i: _key(jobs[i]))
    answers: dict[int, Claim | RunOutcome] = {}
    with locked_write(rt.db) as session, webhooks.endpoints_remembered(session):
        for index in finishes:
            answers[index] = _finish(rt, session, jobs[index], worker_id)
        now = utcnow()
        for index in claims:
            answers[index] = claim_in(rt, session, str(jobs[index]), worker_id, now)
    return [answers[i] for i in range(len(jobs))]


def _key(job: RunWrite) -> str:
    return job if isinstance(job, str) else job[0].connection_id


def _finish(rt: Runtime, session: Session, job: RunWrite, worker_id: str) -> RunOutcome:
    assert not isinstance(job, str)
    claim, verdict = job
    # the writer thread finishes many runs: each under its own request id, so the webhook
    # deliveries and log lines it makes carry it (the id of whoever queued the run, else its own)
    with trace.bound(claim.request_id or claim.run_id):
        return finish_in(rt, session, claim, verdict, worker_id=worker_id, now=utcnow())
