"""The sync engine: many sync runs in flight per process, partner latency hidden behind a bounded pool.

A queue task only hands its run id over (:meth:`SyncEngine.submit`) and blocks while the engine
already holds ``settings.sync_concurrency`` runs, so the queue is never drained into memory (our
tables stay the truth: a killed process leaves leased runs, which the reaper takes back). Each run
then goes through three steps, on one thread of a pool of exactly that many threads:

1. **claim**, through a group-commit writer: every run waiting to be claimed is claimed in one
   transaction (:func:`tovplus.services.sync.write_runs`), with its one decryption of the secrets;
2. **the adapter's** ``sync``, blocking as contract v1 says, with the lease renewed meanwhile; an
   adapter's declared partner limits (applied inside its HTTP client) hold the thread, which is the
   back-pressure they ask for;
3. **finish**, through a group-commit writer: many results per transaction, each conditional on
   still holding its lease, so a run is finished exactly once and one taken over while it ran
   comes back ``lost``; the webhook deliveries it created are dispatched after the commit, and a
   retry is scheduled on the queue.

**One writer on SQLite, two on PostgreSQL.** SQLite has one writer, so two writer threads (claims,
finishes) only queue on its lock in turn; on SQLite the engine has *one* writer, and a batch holds
the claims and the finishes waiting at that moment in one transaction (one lock hand-over, one
``BEGIN``/``COMMIT`` for both). On PostgreSQL transactions run side by side, so claims and
finishes keep a writer each and no batch mixes the two kinds (each kind takes its rows in id
order, which keeps two processes' batches from deadlocking). Measured in docs/benchmarks.md.

Threads are cheap while they wait on a socket: 128 of them hold 128 partner calls in flight for a
few megabytes, and the writers keep the database's work per run small. They used to stop scaling
near 32, not on the GIL but on httpcore's pool lock, which every request takes; the partner
client now keeps one pool per 16 threads (``runtime/partner_http.py``), and 128 threads sync as
fast against a 200 ms partner as against an instant one (docs/benchmarks.md, "Sync engine").
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from tovplus.db.models import SyncRun
from tovplus.runtime import Runtime, trace, tracing
from tovplus.runtime.group_commit import GroupCommitWriter, WriterStopped
from tovplus.services import sync as syncs

log = logging.getLogger(__name__)

#: How a retry is put back on the queue: ``(run_id, retry_at)``.
RetryScheduler = Callable[[str, datetime], None]
#: What claiming a run gives: the claim, or why there is nothing to run.
_Claimed = syncs.Claim | syncs.RunOutcome
_Writer = GroupCommitWriter[syncs.RunWrite, _Claimed]


class SyncEngine:
    """Holds at most ``concurrency`` sync runs of this process; see the module docstring."""

    def __init__(
        self,
        rt: Runtime,
        *,
        worker_id: str,
        keeper: syncs.LeaseKeeper,
        concurrency: int,
        schedule_retry: RetryScheduler,
    ) -> None:
        self.rt = rt
        self.worker_id = worker_id
        self.keeper = keeper
        self.concurrency = concurrency
        self._schedule_retry = schedule_retry
        self._slots = threading.Semaphore(concurrency)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="tovplus-sync")
        # claims and finishes share a writer on SQLite (see the module docstring); a batch holds at
        # most one claim and one finish per run held
        self._claims: _Writer = GroupCommitWriter(
            self._write_batch, name="tovplus-sync-writer", max_batch=2 * concurrency
        )
        self._finishes: _Writer = self._claims
        if not rt.db.is_sqlite:
            self._claims.max_batch = concurrency
            self._finishes = GroupCommitWriter(
                self._write_batch, name="tovplus-sync-finish", max_batch=concurrency
            )
        #: Claims and finishes written since the start (each hand-over is claimed once, each
        #: claimed run finished once).
        self.claims_written = 0
        self.finishes_written = 0
        self._stopping = threading.Event()
        self._count = threading.Condition()
        #: Runs held now, and the most held at once (the bound is never passed).
        self.held = 0
        self.peak = 0
        #: Runs handed over since the start.
        self.submitted = 0

    # --- the queue side ---------------------------------------------------------------------------

    def submit(self, run_id: str) -> bool:
        """Take ``run_id``, blocking while the engine is full; False when it is stopping (the run
        stays queued in the database, and the reaper hands it out again)."""
        while not self._slots.acquire(timeout=0.5):
            if self._stopping.is_set():
                return False
        if self._stopping.is_set():
            self._slots.release()
            return False
        with self._count:
            self.held += 1
            self.submitted += 1
            self.peak = max(self.peak, self.held)
        context = contextvars.copy_context()  # the request id the task bound, for logs and headers
        self._pool.submit(context.run, self._work, run_id)
        return True

    # --- one run, on a pool thread --------------------------------------------------------------------

    def _work(self, run_id: str) -> None:
        try:
            with tracing.row_span("sync.run", self.rt.db, SyncRun, run_id, run_id=run_id):
                self._run(run_id)
        except WriterStopped:  # stopping: the run keeps its lease until it expires; the reaper takes it back
            log.warning("sync run %s was left to the reaper: the engine stopped", run_id)
        except Exception:  # the same: the reaper takes it back
            log.exception("the sync engine failed on run %s", run_id)
        finally:
            with self._count:
                self.held -= 1
                self._count.notify_all()
            self._slots.release()

    def _run(self, run_id: str) -> None:
        claim = self._claims.submit_wait(run_id)
        if isinstance(claim, syncs.RunOutcome):
            return  # not ours to run (gone, not queued, not due), or cancelled at the claim
        # the claim returns the run's stored request id, so the queue task needs no read of its own
        with trace.bound(claim.request_id or run_id):
            self._held(claim)

    def _held(self, claim: syncs.Claim) -> None:
        """The adapter's call and the finish of a run this engine has claimed."""
        run_id = claim.run_id
        extra: dict[str, Any] = {"run_id": run_id, "connection_id": claim.connection_id}
        self.keeper.track(run_id)  # until the finish commits, not only during the adapter call
        try:
            if claim.unreadable is not None:
                verdict = syncs.Verdict("unreadable", message=claim.unreadable)
            else:
                with tracing.span("sync.adapter", integration_key=claim.integration_key, **extra):
                    verdict = syncs.run_adapter(
                        self.rt, claim, self.worker_id, keeper=None, http=None, extra=extra
                    )
            outcome = self._finishes.submit_wait((claim, verdict))
            assert isinstance(outcome, syncs.RunOutcome)
        finally:
            self.keeper.untrack(run_id)
        syncs.report_outcome(self.rt, outcome, extra)
        if outcome.state == syncs.OutcomeState.RETRYING and outcome.retry_at is not None:
            self._schedule_retry(run_id, outcome.retry_at)

    # --- the writer(s) -----------------------------------------------------------------------------

    def _write_batch(self, jobs: Sequence[syncs.RunWrite]) -> Sequence[_Claimed | BaseException]:
        claims = sum(1 for job in jobs if isinstance(job, str))
        with tracing.span("sync.write", claims=claims, finishes=len(jobs) - claims):
            answers = syncs.write_runs(self.rt, jobs, worker_id=self.worker_id)
        with self._count:  # two writer threads on PostgreSQL
            self.claims_written += claims
            self.finishes_written += len(jobs) - claims
        return answers

    # --- life cycle ------------------------------------------------------------------------------------

    def start(self) -> SyncEngine:
        self._claims.start()
        self._finishes.start()  # the same writer on SQLite: starting it twice is a no-op
        return self

    def refuse_new(self) -> None:
        """Take no more runs (the first step of stopping; blocked :meth:`submit` calls return)."""
        self._stopping.set()

    def stop(self, timeout: float = 10.0) -> bool:
        """Refuse new runs, wait up to ``timeout`` s for those held, then stop the writers.

        Returns True when every held run finished; the others keep their leases until they expire
        and the reaper takes them back."""
        self.refuse_new()
        with self._count:
            drained = self._count.wait_for(lambda: self.held == 0, timeout)
        if not drained:
            log.warning("the sync engine stopped with %d runs in flight (the reaper takes them)", self.held)
        self._pool.shutdown(wait=drained, cancel_futures=True)
        self._claims.stop(timeout=1.0)
        self._finishes.stop(timeout=1.0)
        return drained

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no run is held (tests, benchmarks); True when idle."""
        with self._count:
            return self._count.wait_for(lambda: self.held == 0, timeout)
