"""The callback service: every check in the contract's order, one transaction per batch.

:meth:`CallbackService.receive` hands an :class:`InboundCallback` to the group-commit writer
(:mod:`tovplus.runtime.group_commit`): the requests that arrive while one batch commits share
the next transaction, and a request is answered only after its batch has committed. Each job
of a batch is checked in this order:

1. unknown connection, a connection of another adapter, or an adapter without
   inbound callbacks → 404 (:class:`NotFound`);
2. a missing or wrong secret or signature, a revoked or rotated-away key → 401
   (:class:`Unauthenticated`); every one is counted per connection and reason, and the
   ``callback.rejected`` activity entries are rate-limited and coalesced (:mod:`.rejection_log`);
3. the connection's callback rate → 429 (:class:`RateLimited`, ``Retry-After``);
4. a connection that is not enabled → 409;
5. the same delivery id as an earlier accepted callback → ``duplicate`` with the
   first activity id and no second effect;
6. a payload the adapter rejects → 422 (:class:`CallbackRejected`, field errors).

An accepted callback writes the delivery id, the adapter's records and a
``callback.received`` activity entry (:mod:`.store`), and touches the key's last-used
time (coalesced).
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from tovplus.db.raw import dbapi_cursor
from tovplus.db.sqlite import WalCheckpointer
from tovplus.db.states import ConnectionState
from tovplus.db.types import utcnow
from tovplus.errors import (
    CallbackRejected,
    Conflict,
    IntegrationSuspended,
    NotFound,
    RateLimited,
    TovPlusError,
    Unauthenticated,
)
from tovplus.integrations.contract import Adapter
from tovplus.runtime import Runtime, tracing
from tovplus.runtime.group_commit import GroupCommitWriter
from tovplus.runtime.ratelimit import RateLimiter
from tovplus.services.auth import needs_touch, touch_integration_key
from tovplus.services.callbacks.authentication import Rejected, authenticate
from tovplus.services.callbacks.batch import Accepted, TailCursor, Target, Tx
from tovplus.services.callbacks.connection import WriterConnection
from tovplus.services.callbacks.inbound import MAX_DELIVERY_ID, CallbackOutcome, InboundCallback
from tovplus.services.callbacks.mapping import delivery_id_of, map_payload
from tovplus.services.callbacks.rejection_log import RejectionLog
from tovplus.services.callbacks.signing import SigningKeys
from tovplus.services.callbacks.store import RefusedWithId, Results, load_targets, store_accepted

#: What our ids look like (``new_id``); anything else cannot name a connection.
_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")


class CallbackService:
    """Receives callbacks for one runtime: owns the rate limiter, the rejection log, the opened
    signing keys and the group-commit writer."""

    def __init__(self, rt: Runtime, *, max_batch: int = 256) -> None:
        self.rt = rt
        self.limiter = RateLimiter(rt.settings.callback_rate_per_minute)
        self.rejection_log = RejectionLog(rt.db)
        self.signing_keys = SigningKeys(rt.keyring)
        self.connection = WriterConnection(rt.db)
        self.writer: GroupCommitWriter[InboundCallback, CallbackOutcome] = GroupCommitWriter(
            self.commit_batch, name="tovplus-callbacks", max_batch=max_batch, split_on=_job_specific
        )
        self.checkpointer = (
            WalCheckpointer(rt.db.engine, lambda: self.writer.stats.batches) if rt.db.is_sqlite else None
        )

    # --- entry points ----------------------------------------------------------------------

    async def receive(self, callback: InboundCallback) -> CallbackOutcome:
        """Check, store and answer one callback (raises the contract's errors); traced as
        ``callback.ingest`` when tracing is on."""
        with tracing.span(
            "callback.ingest", integration_key=callback.integration_key, connection_id=callback.connection_id
        ):
            self._adapter_for(callback)
            if self.checkpointer is not None and not self.checkpointer.started:
                self.checkpointer.start()
            return await self.writer.submit(callback)

    def receive_wait(self, callback: InboundCallback) -> CallbackOutcome:
        """:meth:`receive` for callers without an event loop."""
        self._adapter_for(callback)
        return self.writer.submit_wait(callback)

    def close(self) -> None:
        """Commit what is queued, stop the writer, write held rejections, stop the checkpointer."""
        self.writer.stop()
        self.connection.close()
        self.rejection_log.stop()
        if self.checkpointer is not None:
            self.checkpointer.stop()

    # --- one batch, one transaction -------------------------------------------------------------

    def commit_batch(self, jobs: Sequence[InboundCallback]) -> list[CallbackOutcome | TovPlusError]:
        """Process ``jobs`` in one write transaction; one outcome or error per job, in order."""
        with self.connection.transaction() as session:
            # the batch's last writes go with the commit (one round trip on PostgreSQL)
            return self._process(session, jobs, defer=self.connection.defer)

    def _process(
        self,
        session: Session,
        jobs: Sequence[InboundCallback],
        defer: Callable[[str, Sequence[Any]], None] | None = None,
    ) -> list[CallbackOutcome | TovPlusError]:
        """The whole batch in the session's transaction (the caller commits). The last writes,
        whose results nobody reads, go to ``defer`` when given, else run at once."""
        cursor, dialect = dbapi_cursor(session)
        try:
            tail = TailCursor(defer if defer is not None else cursor.execute)
            return self._process_in(Tx(session, cursor, dialect, tail), jobs)
        finally:
            cursor.close()

    def _process_in(self, tx: Tx, jobs: Sequence[InboundCallback]) -> list[CallbackOutcome | TovPlusError]:
        session = tx.session
        results: Results = [None] * len(jobs)
        adapters = self._adapters(jobs, results)
        ids = sorted({j.connection_id for j, a in zip(jobs, adapters, strict=True) if a is not None})
        targets = load_targets(tx, ids) if ids else {}
        now = utcnow()
        accepted: list[Accepted] = []
        refused_with_id: list[RefusedWithId] = []
        rejections: list[tuple[Target, str]] = []
        touch: set[str] = set()
        for i, (job, adapter) in enumerate(zip(jobs, adapters, strict=True)):
            if adapter is None:
                continue
            target = targets.get(job.connection_id)
            if target is None or target.integration_key != job.integration_key:
                results[i] = NotFound("No such callback endpoint.")
                continue
            try:
                key = authenticate(job, target, adapter, self.signing_keys)
            except Rejected as exc:
                results[i] = Unauthenticated(
                    "The callback's secret or signature is missing or not valid (it may have been revoked "
                    "or rotated)."
                )
                rejections.append((target, exc.reason))
                continue
            if needs_touch(key.last_used_at, now):
                touch.add(key.key_id)
            refusal = self._refusal(target)
            if refusal is not None:
                results[i] = refusal
                continue
            try:
                delivery_id = delivery_id_of(job)
                mapped = map_payload(session, job, target, adapter)
            except CallbackRejected as exc:
                results[i] = exc
                if job.effective_delivery_id and len(job.effective_delivery_id) <= MAX_DELIVERY_ID:
                    refused_with_id.append((i, job, exc))
                continue
            accepted.append(Accepted(i, job, target, mapped, delivery_id))

        for key_id in sorted(touch):
            touch_integration_key(session, key_id, now)
        if accepted or refused_with_id:
            store_accepted(tx, accepted, refused_with_id, results, now)
        if rejections:
            self.rejection_log.record(tx, rejections, now)
        return [r if r is not None else NotFound("No such callback endpoint.") for r in results]

    # --- steps ---------------------------------------------------------------------------------------

    def _adapter_for(self, job: InboundCallback) -> Adapter:
        adapter = self.rt.registry.find(job.integration_key)
        if (
            adapter is None
            or not adapter.supports_inbound_callbacks
            or _ID.fullmatch(job.connection_id) is None
        ):
            raise NotFound("No such callback endpoint.")
        return adapter

    def _adapters(self, jobs: Sequence[InboundCallback], results: Results) -> list[Adapter | None]:
        """Each job's adapter, or ``None`` with its 404 in ``results``."""
        adapters: list[Adapter | None] = []
        for i, job in enumerate(jobs):
            try:
                adapters.append(self._adapter_for(job))
            except NotFound as exc:
                adapters.append(None)
                results[i] = exc
        return adapters

    def _refusal(self, target: Target) -> TovPlusError | None:
        """429 over the connection's callback rate, 409 when it is not enabled; else ``None``."""
        wait = self.limiter.acquire(target.connection_id)
        if wait > 0:
            return RateLimited(
                "Too many callbacks for this connection; retry later.",
                retry_after=max(1, math.ceil(wait)),
            )
        if target.state != ConnectionState.ENABLED:
            return Conflict(
                f"The connection is {target.state}, not enabled; it does not accept callbacks.",
                code="connection_not_enabled",
            )
        if target.suspended:
            return IntegrationSuspended(
                "An administrator has suspended this integration; callbacks are refused until it is resumed."
            )
        return None


def _job_specific(exc: Exception) -> bool:
    """Could this failure be one callback's fault? Not when the database is locked, gone or
    out of space: retrying each callback alone would only wait that long again, once per job."""
    return not isinstance(
        exc, OperationalError | InterfaceError | sqlite3.OperationalError | psycopg.OperationalError
    )
