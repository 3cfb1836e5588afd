"""Sync runs: requesting, claiming, running and finishing them.

A run is a row in ``sync_runs`` (``queued`` → ``running`` → ``succeeded`` | ``failed``, or back
to ``queued`` for a retry). The queue only carries "run sync run X"; this module decides
everything else:

* :func:`claim_run` is a conditional update (``queued`` and due → ``running`` with a lease),
  so of two workers given the same id, one runs it and the other does nothing;
* :class:`LeaseKeeper` renews the leases of the runs a process is working on; a process
  killed mid-sync stops renewing, and the reaper (``services.scheduler.reap``) re-queues it;
* :func:`execute_run` calls the adapter's ``sync`` outside any transaction with the
  decrypted secrets and an HTTP client that refuses non-public addresses, then writes
  everything in ONE transaction, conditional on still holding the lease: records,
  health, ``last_sync_at``, activity and the webhook outbox rows. A run whose lease was
  taken over cannot complete twice.

Failures map to health as the contract says: ``CredentialsRejected`` stops at once with
health ``failing`` and a reason asking the planner to update the credentials;
``PartnerUnavailable`` (5xx, timeouts, refused connections) and unexpected adapter errors are
retried after ``settings.sync_retry_delays`` (with jitter) and then fail with ``failing``;
``DriftDetected`` and ``SyncResult.drift`` make health ``degraded`` with the reasons. A
success makes it ``healthy`` again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import httpx
from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import Connection, SyncRun
from tovplus.db.session import Database
from tovplus.db.sql import one_of
from tovplus.db.types import JSONType, UTCDateTime, utcnow
from tovplus.errors import (
    Conflict,
    CredentialsRejected,
    DriftDetected,
    Forbidden,
    NotFound,
    PartnerUnavailable,
    TovPlusError,
)
from tovplus.integrations.contract import Adapter, Health, SyncContext, SyncResult
from tovplus.integrations.http import ClientCache, outbound_client
from tovplus.integrations.payloads import format_timestamp
from tovplus.runtime import Runtime, metrics
from tovplus.services import activity, credentials
from tovplus.services.auth import MANAGE, Caller, authorize
from tovplus.services.records import record_problems, upsert_records
from tovplus.settings import Settings

log = logging.getLogger(__name__)

ACTIVE_STATES = ("queued", "running")
SYSTEM = "system"
SYNC_COMPLETED_EVENT = "integration.sync_completed"
MAX_ERROR_CHARS = 1000
#: Jitter applied to each retry delay: the delay is multiplied by a factor in this range.
JITTER = (0.8, 1.2)


def active_run_id(session: Session, connection_id: str) -> str | None:
    return session.scalar(
        select(SyncRun.id).where(SyncRun.connection_id == connection_id, SyncRun.state.in_(ACTIVE_STATES))
    )


def enqueue_run(session: Session, connection_id: str, *, trigger: str, requested_by: str) -> tuple[str, bool]:
    """Insert a queued run unless one is active. Returns ``(run_id, created)``."""
    existing = active_run_id(session, connection_id)
    if existing is not None:
        return existing, False
    run = SyncRun(
        id=new_id("run"),
        connection_id=connection_id,
        state="queued",
        trigger=trigger,
        requested_by=requested_by,
        attempt=0,
        next_attempt_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(run)
    except IntegrityError:  # another request queued one at the same moment
        existing = active_run_id(session, connection_id)
        if existing is None:
            raise
        return existing, False
    return run.id, True


def request_sync(rt: Runtime, caller: Caller, occasion_id: str, connection_id: str) -> str:
    """Queue a manual sync of an enabled connection whose adapter syncs; returns the run id."""
    with rt.db.write() as session:
        authorize(session, caller, MANAGE, occasion_id)
        row = session.get(Connection, connection_id) if len(connection_id) <= 40 else None
        if row is None or row.occasion_id != occasion_id:
            raise NotFound("No such connection.")
        adapter = rt.registry.find(row.integration_key)
        if adapter is None or not adapter.supports_background_sync:
            raise Conflict("This integration does not sync in the background.", code="sync_not_supported")
        if row.state != "enabled":
            raise Conflict("Only enabled connections sync.", code="connection_not_enabled")
        run_id, created = enqueue_run(session, row.id, trigger="manual", requested_by=caller.subject_id)
    if created:
        rt.dispatcher.sync_run(run_id)
    return run_id


# --- intervals and retry delays -------------------------------------------------------------------


def sync_interval(settings: Settings, adapter: Adapter, override_seconds: int | None) -> timedelta:
    """Time between scheduled syncs: the connection's override, else the setting, else the adapter's."""
    if override_seconds:
        return timedelta(seconds=override_seconds)
    if settings.sync_interval_seconds:
        return timedelta(seconds=settings.sync_interval_seconds)
    return adapter.default_sync_interval


def retry_delay(settings: Settings, attempt: int) -> float | None:
    """Seconds to wait after failed attempt number ``attempt`` (1-based), or ``None``: give up."""
    delays = settings.sync_retry_delays
    if attempt > len(delays):
        return None
    return float(delays[attempt - 1]) * random.uniform(*JITTER)


def max_attempts(settings: Settings) -> int:
    return len(settings.sync_retry_delays) + 1


# --- write transactions ------------------------------------------------------------------------


_write_locks: weakref.WeakKeyDictionary[Database, threading.Lock] = weakref.WeakKeyDictionary()
_write_locks_guard = threading.Lock()


@contextmanager
def _writing(rt: Runtime) -> Iterator[Session]:
    """``rt.db.write()``; on SQLite, this process's sync threads first queue on one lock, so they
    take turns at once instead of sleeping in SQLite's busy handler (one writer at a time anyway)."""
    if not rt.db.is_sqlite:
        with rt.db.write() as session:
            yield session
        return
    with _write_locks_guard:
        lock = _write_locks.get(rt.db)
        if lock is None:
            lock = _write_locks[rt.db] = threading.Lock()
    with lock, rt.db.write() as session:
        yield session


# --- the partner HTTP client ---------------------------------------------------------------------


#: The largest answer a partner may send to one sync request; a larger one fails the attempt (retried).
PARTNER_RESPONSE_LIMIT_BYTES = 16 * 1024 * 1024
_clients = ClientCache()


def partner_http_client(settings: Settings) -> httpx.Client:
    """The process's client for partner APIs: timeouts, connection reuse, no redirects, no cookies,
    no proxies from the environment, and non-public addresses refused unless ``allow_private_urls``."""
    timeout = settings.sync_http_timeout_seconds
    return _clients.get(
        (settings.allow_private_urls, timeout, settings.worker_threads),
        lambda: outbound_client(
            allow_private=settings.allow_private_urls,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            pool_size=max(20, settings.worker_threads * 4),
            user_agent="TOVPlus-Sync/1",
            max_response_bytes=PARTNER_RESPONSE_LIMIT_BYTES,
        ),
    )


def close_http_clients() -> None:
    _clients.close()


# --- leases --------------------------------------------------------------------------------------


class LeaseKeeper:
    """Renews, every third of ``lease_seconds``, the leases of the runs this process is working on.

    One background thread per process and one ``UPDATE`` per renewal for all of them. A run
    whose renewal finds it no longer ours (the reaper took it back) is remembered in ``lost``;
    its result will be discarded by the conditional finish anyway.
    """

    def __init__(self, rt: Runtime, worker_id: str, *, interval: float | None = None) -> None:
        self.rt = rt
        self.worker_id = worker_id
        self.interval = interval if interval is not None else rt.settings.lease_seconds / 3
        self._runs: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: set[str] = set()
        self.renewals = 0

    def track(self, run_id: str) -> None:
        with self._lock:
            self._runs.add(run_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="sync-lease-keeper", daemon=True)
                self._thread.start()

    def untrack(self, run_id: str) -> None:
        with self._lock:
            self._runs.discard(run_id)

    def renew_now(self) -> int:
        with self._lock:
            ids = sorted(self._runs)
        if not ids:
            return 0
        now = utcnow()
        with _writing(self.rt) as session:
            result = session.execute(
                update(SyncRun)
                .where(
                    one_of(SyncRun.id, ids),
                    SyncRun.state == "running",
                    SyncRun.lease_owner == self.worker_id,
                )
                .values(lease_expires_at=now + timedelta(seconds=self.rt.settings.lease_seconds))
                .execution_options(synchronize_session=False)
            )
            renewed = int(result.rowcount)  # type: ignore[attr-defined]
            if renewed != len(ids):
                held = set(
                    session.scalars(
                        select(SyncRun.id).where(
                            one_of(SyncRun.id, ids),
                            SyncRun.state == "running",
                            SyncRun.lease_owner == self.worker_id,
                        )
                    )
                )
                self.lost.update(set(ids) - held)
        self.renewals += 1
        return renewed

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.renew_now()
            except Exception:  # a database hiccup: try again next round, the lease has slack
                log.exception("renewing sync run leases failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


# --- claiming ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    """A run this worker now holds, with what the adapter needs (secrets stay in memory only)."""

    run_id: str
    attempt: int
    trigger: str
    connection_id: str
    occasion_id: str
    integration_key: str
    config: Mapping[str, Any]
    secrets: Mapping[str, str] = field(repr=False)
    last_success_at: datetime | None
    started_at: datetime
    #: The connection's version when claimed: any edit by a planner during the run bumps it.
    version: int = 0


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What became of one execution of a run.

    ``state`` is ``succeeded``/``failed`` (final), ``retrying`` (queued again for ``retry_at``),
    ``skipped`` (not ours to run: gone, not queued, or not due yet), ``lost`` (our lease was
    taken over while we worked) or ``discarded`` (a planner edited the connection while it
    synced — its version moved — so the result may belong to old settings or credentials: the
    run failed without storing anything, and the connection is still due, so the next tick
    syncs it again with what is stored now). Nothing is written for ``lost``.
    """

    run_id: str
    state: str
    retry_at: datetime | None = None
    records: int = 0
    health: str | None = None
    error: str | None = None
    delivery_ids: tuple[str, ...] = ()


def _cancel(session: Session, run_id: str, reason: str, now: datetime) -> None:
    session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id)
        .values(
            state="failed",
            error=reason,
            finished_at=now,
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=None,
        )
        .execution_options(synchronize_session=False)
    )


_RUNS = cast(Table, SyncRun.__table__)
_CONNECTIONS = cast(Table, Connection.__table__)
_RUN = _RUNS.c
_CONNECTION = _CONNECTIONS.c


def _at(name: str) -> Any:
    return bindparam(name, type_=UTCDateTime())


# Statements built once (building them per call costs more than running them on SQLite).
_CLAIM = (
    update(_RUNS)
    .where(
        _RUN.id == bindparam("run_id"),
        _RUN.state == "queued",
        or_(_RUN.next_attempt_at.is_(None), _RUN.next_attempt_at <= _at("now")),
    )
    .values(
        state="running",
        attempt=_RUN.attempt + 1,
        lease_owner=bindparam("owner"),
        lease_expires_at=_at("lease_until"),
        started_at=func.coalesce(_RUN.started_at, _at("now")),
    )
    .returning(_RUN.connection_id, _RUN.attempt, _RUN.trigger, _RUN.requested_by)
)
_RUN_STATE = select(_RUN.state, _RUN.next_attempt_at).where(_RUN.id == bindparam("run_id"))
_CLAIMED_CONNECTION = select(
    _CONNECTION.state,
    _CONNECTION.integration_key,
    _CONNECTION.occasion_id,
    _CONNECTION.config,
    _CONNECTION.last_success_at,
    _CONNECTION.version,
).where(_CONNECTION.id == bindparam("connection_id"))
_OURS = (
    _RUN.id == bindparam("run_id"),
    _RUN.state == "running",
    _RUN.lease_owner == bindparam("owner"),
    _RUN.attempt == bindparam("held_attempt"),
)
#: Ends or re-queues a run this worker holds; every column is set, to one statement for all paths.
_END_RUN = (
    update(_RUNS)
    .where(*_OURS)
    .values(
        state=bindparam("new_state"),
        lease_owner=bindparam("new_owner"),
        lease_expires_at=None,
        next_attempt_at=func.coalesce(_at("new_next_attempt_at"), _RUN.next_attempt_at),
        finished_at=_at("new_finished_at"),
        error=bindparam("new_error"),
        records_written=bindparam("new_records"),
    )
)
_FINISHING_CONNECTION = (
    select(
        _CONNECTION.id,
        _CONNECTION.state,
        _CONNECTION.version,
        _CONNECTION.health,
        _CONNECTION.config,
        _CONNECTION.occasion_id,
        _CONNECTION.integration_key,
        _CONNECTION.scope_type,
        _CONNECTION.scope_event_id,
        _CONNECTION.sync_interval_seconds,
    )
    .where(_CONNECTION.id == bindparam("connection_id"))
    .with_for_update()
)
_CONNECTION_HEALTH = select(_CONNECTION.health).where(_CONNECTION.id == bindparam("connection_id"))
_RECORD_SYNC = (
    update(_CONNECTIONS)
    .where(_CONNECTION.id == bindparam("connection_id"))
    .values(
        sync_health=bindparam("new_sync_health"),
        sync_health_reasons=bindparam("new_sync_reasons", type_=JSONType),
        health=bindparam("new_health"),
        health_reasons=bindparam("new_health_reasons", type_=JSONType),
        last_sync_at=_at("new_last_sync_at"),
        last_sync_status=bindparam("new_status"),
        last_success_at=func.coalesce(_at("new_last_success_at"), _CONNECTION.last_success_at),
        next_sync_at=_at("new_next_sync_at"),
        version=_CONNECTION.version + 1,
    )
)


def claim_run(rt: Runtime, run_id: str, worker_id: str, *, now: datetime | None = None) -> Claim | RunOutcome:
    """Take a queued, due run with a lease and record ``sync.started``; or say why not.

    One conditional ``UPDATE … RETURNING`` takes the run (so two workers given the same id
    cannot both get it), one read loads the connection, one the secrets, one insert the activity.
    """
    now = now or utcnow()
    if len(run_id) > 40:
        return RunOutcome(run_id, "skipped")
    with _writing(rt) as session:
        taken = session.execute(
            _CLAIM,
            {
                "run_id": run_id,
                "now": now,
                "owner": worker_id,
                "lease_until": now + timedelta(seconds=rt.settings.lease_seconds),
            },
        ).first()
        if taken is None:
            run = session.execute(_RUN_STATE, {"run_id": run_id}).first()
            if run is not None and run.state == "queued" and run.next_attempt_at is not None:
                return RunOutcome(run_id, "skipped", retry_at=run.next_attempt_at)  # not due yet
            return RunOutcome(run_id, "skipped")
        conn = session.execute(_CLAIMED_CONNECTION, {"connection_id": taken.connection_id}).first()
        adapter = rt.registry.find(conn.integration_key) if conn is not None else None
        if conn is None or conn.state != "enabled":
            _cancel(session, run_id, "The connection is not enabled any more.", now)
            return RunOutcome(run_id, "failed", error="connection not enabled")
        if adapter is None or not adapter.supports_background_sync:
            _cancel(session, run_id, "This integration does not sync in the background.", now)
            return RunOutcome(run_id, "failed", error="sync not supported")
        secrets = credentials.decrypt_connection_secrets(session, rt.keyring, taken.connection_id)
        activity.record(
            session,
            kind="sync.started",
            actor=SYSTEM,
            summary=f"{adapter.name} sync started"
            + (f" (attempt {taken.attempt})" if taken.attempt > 1 else ""),
            occasion_id=conn.occasion_id,
            connection_id=taken.connection_id,
            integration_key=conn.integration_key,
            details={
                "sync_run_id": run_id,
                "attempt": taken.attempt,
                "trigger": taken.trigger,
                "requested_by": taken.requested_by,
            },
        )
        return Claim(
            run_id=run_id,
            attempt=taken.attempt,
            trigger=taken.trigger,
            connection_id=taken.connection_id,
            occasion_id=conn.occasion_id,
            integration_key=conn.integration_key,
            config=dict(conn.config),
            secrets=secrets,
            last_success_at=conn.last_success_at,
            started_at=now,
            version=conn.version,
        )


# --- running -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Verdict:
    """How an attempt ended, before it is written."""

    kind: str  # success | credentials | drift | transient | forbidden
    result: SyncResult | None = None
    message: str = ""
    reasons: tuple[str, ...] = ()


def _call_adapter(adapter: Adapter, ctx: SyncContext, extra: dict[str, Any]) -> _Verdict:
    try:
        result = adapter.sync(ctx)
    except CredentialsRejected as exc:
        return _Verdict("credentials", message=exc.message)
    except DriftDetected as exc:
        return _Verdict("drift", message=exc.message, reasons=exc.reasons or (exc.message,))
    except PartnerUnavailable as exc:
        return _Verdict("transient", message=exc.message)
    except Forbidden as exc:
        return _Verdict("forbidden", message=f"The partner's address is not allowed: {exc.message}")
    except TovPlusError as exc:
        return _Verdict("transient", message=exc.message)
    except Exception as exc:  # an adapter bug must not kill the worker; retried, then failing
        log.exception("adapter %s crashed during sync", adapter.integration_key, extra=extra)
        return _Verdict("transient", message=f"The integration failed unexpectedly ({type(exc).__name__}).")
    if not isinstance(result, SyncResult):
        return _Verdict("transient", message="The integration returned no sync result.")
    problems = record_problems(list(result.records))
    if problems:
        log.error(
            "adapter %s returned unstorable records: %s", adapter.integration_key, problems, extra=extra
        )
        return _Verdict("transient", message="The integration returned records that cannot be stored.")
    return _Verdict("success", result=result)


def execute_run(
    rt: Runtime,
    run_id: str,
    *,
    worker_id: str,
    keeper: LeaseKeeper | None = None,
    http: httpx.Client | None = None,
) -> RunOutcome:
    """Claim, run and finish one sync run; dispatches the webhook deliveries it created.

    Returns the outcome; a ``retrying`` outcome carries ``retry_at`` for the caller to
    schedule (the reaper would find it anyway).
    """
    claim = claim_run(rt, run_id, worker_id)
    if isinstance(claim, RunOutcome):
        return claim
    extra = {"run_id": run_id, "connection_id": claim.connection_id}
    adapter = rt.registry.get(claim.integration_key)
    ctx = SyncContext(
        connection_id=claim.connection_id,
        occasion_id=claim.occasion_id,
        config=claim.config,
        secrets=claim.secrets,
        http=http or partner_http_client(rt.settings),
        last_success_at=claim.last_success_at,
        now=claim.started_at,
    )
    if keeper is not None:
        keeper.track(run_id)
    started = time.perf_counter()
    try:
        verdict = _call_adapter(adapter, ctx, extra)
    finally:
        if keeper is not None:
            keeper.untrack(run_id)
    metrics.SYNC_DURATION.observe(time.perf_counter() - started)
    outcome = finish_run(rt, claim, verdict, worker_id=worker_id)
    metrics.SYNC_RUNS.labels(outcome.state).inc()
    if outcome.state == "lost":
        log.warning("sync run %s was taken over while it ran; its result was discarded", run_id, extra=extra)
    else:
        log.info("sync run %s %s", run_id, outcome.state, extra=extra)
    for delivery_id in outcome.delivery_ids:
        rt.dispatcher.webhook_delivery(delivery_id)
    return outcome


class _Lost(Exception):
    pass


def finish_run(rt: Runtime, claim: Claim, verdict: _Verdict, *, worker_id: str) -> RunOutcome:
    """Write the attempt's result in one transaction, if this worker still holds the run."""
    try:
        with _writing(rt) as session:
            return _finish(rt, session, claim, verdict, worker_id)
    except _Lost:
        return RunOutcome(claim.run_id, "lost")


def _finish(rt: Runtime, session: Session, claim: Claim, verdict: _Verdict, worker_id: str) -> RunOutcome:
    now = utcnow()
    settings = rt.settings
    ours = {"run_id": claim.run_id, "owner": worker_id, "held_attempt": claim.attempt}

    def end_run(state: str, error: str | None, *, records: int = 0, retry_at: datetime | None = None) -> None:
        """End (or re-queue) the run if it is still ours; a finished run keeps ``lease_owner`` as
        the record of who ran it, a re-queued one frees it."""
        result = session.execute(
            _END_RUN,
            {
                **ours,
                "new_state": state,
                "new_owner": None if state == "queued" else worker_id,
                "new_next_attempt_at": retry_at,
                "new_finished_at": None if state == "queued" else now,
                "new_error": error,
                "new_records": records,
            },
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise _Lost

    if verdict.kind == "transient":
        delay = retry_delay(settings, claim.attempt)
        if delay is not None:
            retry_at = now + timedelta(seconds=delay)
            end_run("queued", verdict.message[:MAX_ERROR_CHARS], retry_at=retry_at)
            activity.record(
                session,
                kind="sync.retrying",
                actor=SYSTEM,
                summary=f"Sync attempt {claim.attempt} failed; retrying in {_human(delay)}",
                occasion_id=claim.occasion_id,
                connection_id=claim.connection_id,
                integration_key=claim.integration_key,
                details={
                    "sync_run_id": claim.run_id,
                    "attempt": claim.attempt,
                    "error": verdict.message,
                    "next_attempt_at": format_timestamp(retry_at),
                },
            )
            return RunOutcome(
                claim.run_id,
                "retrying",
                retry_at=retry_at,
                health=session.scalar(_CONNECTION_HEALTH, {"connection_id": claim.connection_id}),
                error=verdict.message,
            )

    conn = session.execute(_FINISHING_CONNECTION, {"connection_id": claim.connection_id}).first()
    if conn is None or conn.state != "enabled":
        end_run("failed", "The connection was disabled or revoked while it synced; nothing was stored.")
        return RunOutcome(claim.run_id, "failed", error="connection not enabled")
    if conn.version != claim.version:
        end_run(
            "failed",
            "The connection was edited while it synced; nothing was stored "
            "and the next sync uses the new settings.",
        )
        return RunOutcome(claim.run_id, "discarded", error="connection edited during the sync")
    adapter = rt.registry.get(conn.integration_key)

    records = 0
    if verdict.kind == "success":
        assert verdict.result is not None
        records = upsert_records(session, conn.id, list(verdict.result.records))
        end_run("succeeded", None, records=records)
        drift = [str(r)[:500] for r in verdict.result.drift]
        sync_health = Health.DEGRADED if drift else Health.HEALTHY
        sync_reasons = drift
        status, error = "succeeded", None
    else:
        if verdict.kind == "credentials":
            sync_health = Health.FAILING
            sync_reasons = [_credentials_reason(verdict.message)]
        elif verdict.kind == "drift":
            sync_health = Health.DEGRADED
            sync_reasons = [str(r)[:500] for r in verdict.reasons]
        elif verdict.kind == "forbidden":
            sync_health = Health.FAILING
            sync_reasons = [verdict.message + " Check the partner URL of this connection."]
        else:  # transient, out of retries
            sync_health = Health.FAILING
            sync_reasons = [
                f"{verdict.message} Gave up after {claim.attempt} attempts; "
                "the next scheduled sync will try again."
            ]
        status, error = "failed", verdict.message[:MAX_ERROR_CHARS]
        end_run("failed", error)

    from tovplus.services.connections import effective_health, validation_of

    # unchanged since the claim (same version), so the secrets present are the ones it decrypted
    validation = validation_of(rt, adapter, conn, frozenset(claim.secrets))  # type: ignore[arg-type]
    health, health_reasons = effective_health(conn.state, validation, sync_health.value, sync_reasons)
    previous_health = conn.health
    session.execute(
        _RECORD_SYNC,
        {
            "connection_id": conn.id,
            "new_sync_health": sync_health.value,
            "new_sync_reasons": sync_reasons,
            "new_health": health,
            "new_health_reasons": health_reasons,
            "new_last_sync_at": now,
            "new_status": status,
            # the watermark for the next incremental pull: when this attempt started
            "new_last_success_at": claim.started_at if status == "succeeded" else None,
            "new_next_sync_at": now + sync_interval(settings, adapter, conn.sync_interval_seconds),
        },
    )
    details: dict[str, Any] = {
        "sync_run_id": claim.run_id,
        "attempt": claim.attempt,
        "trigger": claim.trigger,
        "health": health,
    }
    if previous_health != health:
        details["previous_health"] = previous_health
    if status == "succeeded":
        assert verdict.result is not None
        details["records_written"] = records
        if sync_reasons:
            details["drift"] = sync_reasons
        summary = verdict.result.summary or f"{records} records updated"
        activity.record(
            session,
            kind="sync.completed",
            actor=SYSTEM,
            summary=f"{adapter.name} sync completed: {summary}"
            + (" (the partner's view has drifted)" if sync_reasons else ""),
            occasion_id=conn.occasion_id,
            connection_id=conn.id,
            integration_key=conn.integration_key,
            details=details,
        )
    else:
        details["error"] = error
        details["reasons"] = sync_reasons
        activity.record(
            session,
            kind="sync.failed",
            actor=SYSTEM,
            summary=f"{adapter.name} sync failed: {sync_reasons[0]}",
            occasion_id=conn.occasion_id,
            connection_id=conn.id,
            integration_key=conn.integration_key,
            details=details,
        )
    delivery_ids = _emit_sync_completed(
        session,
        occasion_id=conn.occasion_id,
        data={
            "connection_id": conn.id,
            "integration_key": conn.integration_key,
            "occasion_id": conn.occasion_id,
            "status": status,
            "last_sync_at": format_timestamp(now),
            "sync_run_id": claim.run_id,
            "records_written": records,
            "health": health,
            "health_reasons": health_reasons,
        },
    )
    return RunOutcome(
        claim.run_id,
        status,
        records=records,
        health=health,
        error=error,
        delivery_ids=tuple(delivery_ids),
    )


def _credentials_reason(message: str) -> str:
    hint = "Update the credentials of this connection."
    if "credential" in message.lower() or "api key" in message.lower():
        return message
    return f"{message} {hint}".strip()


def _emit_sync_completed(session: Session, *, occasion_id: str, data: dict[str, Any]) -> list[str]:
    """The ``integration.sync_completed`` outbox rows, in the caller's transaction."""
    from tovplus.services.webhooks import emit_event

    return emit_event(session, occasion_id=occasion_id, event_type=SYNC_COMPLETED_EVENT, data=data)


def _human(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
