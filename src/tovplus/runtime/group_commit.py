"""Group commit: one writer thread turns many requests' writes into one transaction.

A request hands its job to :meth:`GroupCommitWriter.submit` and waits. The
writer thread takes every job that is waiting (up to ``max_batch``), calls
``commit_batch(jobs)`` once — which must write and *commit* them in one
transaction and return one result (or exception) per job — and only then wakes
the waiting requests. So an answer always means "committed", and under load the
cost of a transaction (the write lock, the WAL append, the fsync with
``synchronous=FULL``) is shared by every request that arrived while the previous
batch was committing. There is no timer: an idle writer commits a lone job at
once, so latency stays low when load is light.

If a whole batch fails (e.g. one job trips a constraint nobody foresaw), each job
is retried in a transaction of its own, so one bad job cannot fail its
neighbours; a job that fails alone gets its exception. Errors that every job would
meet again (``split_on`` says which) fail the whole batch at once instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

JobT = TypeVar("JobT")
ResultT = TypeVar("ResultT")

_STOP = object()


class WriterStopped(RuntimeError):
    """The writer is stopped (the process is shutting down); the job was not taken."""


@dataclass(slots=True)
class _Item:
    job: Any
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[Any] | Future[Any]


@dataclass(slots=True)
class WriterStats:
    batches: int = 0
    jobs: int = 0
    largest_batch: int = 0
    split_batches: int = 0

    @property
    def mean_batch(self) -> float:
        return self.jobs / self.batches if self.batches else 0.0


def _settle(future: asyncio.Future[Any] | Future[Any], result: Any) -> None:
    if future.done():  # the waiting request went away (cancelled); the work is committed anyway
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def _settle_all(pairs: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in pairs:
        _settle(future, result)


class GroupCommitWriter(Generic[JobT, ResultT]):
    """A single writer thread that commits jobs in batches; see the module docstring."""

    def __init__(
        self,
        commit_batch: Callable[[Sequence[JobT]], Sequence[ResultT | BaseException]],
        *,
        name: str = "tovplus-group-commit",
        max_batch: int = 256,
        split_on: Callable[[Exception], bool] = lambda exc: True,
    ) -> None:
        """``split_on(exc)`` says whether a failed batch is worth retrying job by job: true for
        errors one job can cause (a constraint, a value the database refuses), false for ones
        every job would meet again (the database is locked or gone), which then fail the batch."""
        self._commit_batch = commit_batch
        self._split_on = split_on
        self._name = name
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self.stats = WriterStats()

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._stopped:
                raise WriterStopped("the writer has been stopped")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit everything already submitted, then end the thread. Idempotent."""
        with self._lock:
            self._stopped = True
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- submitting ------------------------------------------------------------------------

    async def submit(self, job: JobT) -> ResultT:
        """Queue ``job`` and wait until its batch has committed; return its result or raise."""
        if self._thread is None:
            self.start()
        elif self._stopped:
            raise WriterStopped("the writer has been stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ResultT] = loop.create_future()
        self._queue.put(_Item(job, loop, future))
        return await future

    def submit_wait(self, job: JobT, timeout: float | None = None) -> ResultT:
        """The same for callers without an event loop (threads, scripts, tests)."""
        if self._thread is None:
            self.start()
        elif self._stopped:
            raise WriterStopped("the writer has been stopped")
        future: Future[ResultT] = Future()
        self._queue.put(_Item(job, None, future))
        return future.result(timeout)

    # --- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch: list[_Item] = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            try:
                results = self._commit(batch)
            except BaseException as exc:  # never leave a request waiting forever
                log.exception("group commit writer failed")
                results = [exc] * len(batch)
            self._deliver(batch, results)
        # anything submitted after the stop marker is refused rather than left waiting
        leftovers: list[_Item] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                leftovers.append(item)
        self._deliver(leftovers, [WriterStopped("the writer has been stopped")] * len(leftovers))

    def _commit(self, batch: list[_Item]) -> list[Any]:
        jobs = [item.job for item in batch]
        stats = self.stats
        stats.batches += 1
        stats.jobs += len(jobs)
        stats.largest_batch = max(stats.largest_batch, len(jobs))
        try:
            results = list(self._commit_batch(jobs))
            if len(results) != len(jobs):
                raise RuntimeError(f"commit_batch returned {len(results)} results for {len(jobs)} jobs")
            return results
        except Exception as exc:
            if len(jobs) == 1 or not self._split_on(exc):
                return [exc] * len(jobs)
            log.warning("batch of %d failed (%s); retrying its jobs one by one", len(jobs), exc)
            stats.split_batches += 1
        out: list[Any] = []
        for job in jobs:
            try:
                single = list(self._commit_batch([job]))
                out.append(single[0] if len(single) == 1 else RuntimeError("commit_batch returned no result"))
            except Exception as exc:
                out.append(exc)
        return out

    @staticmethod
    def _deliver(batch: list[_Item], results: list[Any]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for item, result in zip(batch, results, strict=True):
            if item.loop is None:
                _settle(item.future, result)
            else:
                by_loop.setdefault(item.loop, []).append((item.future, result))  # type: ignore[arg-type]
        for loop, pairs in by_loop.items():
            # one wake-up per loop per batch; a closed loop has nobody waiting any more
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle_all, pairs)
