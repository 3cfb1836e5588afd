"""Holding runs: claiming a queued run with a lease, and renewing the leases while it runs.

* :func:`claim_run` is a conditional update (``queued`` and due → ``running`` with a lease),
  so of two workers given the same id, one runs it and the other does nothing;
* :class:`LeaseKeeper` renews the leases of the runs a process is working on; a process
  killed mid-sync stops renewing, and the reaper (:func:`~tovplus.services.sync.scheduler.reap`)
  re-queues it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tovplus.db.models import SyncRun
from tovplus.db.sql import one_of
from tovplus.db.states import ConnectionState, SyncRunState
from tovplus.db.types import utcnow
from tovplus.db.write_lock import locked_write
from tovplus.runtime import Runtime
from tovplus.runtime.keyring import DecryptionFailed
from tovplus.services import credentials, health
from tovplus.services.sync.outcome import OutcomeState, RunOutcome
from tovplus.services.sync.statements import CLAIM, CLAIMED_CONNECTION, RUN, RUN_STATE

log = logging.getLogger(__name__)


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
        """Renew ``run_id``'s lease from now on (starts the thread on first use)."""
        with self._lock:
            self._runs.add(run_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="sync-lease-keeper", daemon=True)
                self._thread.start()

    def untrack(self, run_id: str) -> None:
        """Stop renewing ``run_id``'s lease."""
        with self._lock:
            self._runs.discard(run_id)

    def renew_now(self) -> int:
        """Renew every tracked lease still ours; returns how many were renewed."""
        with self._lock:
            ids = sorted(self._runs)
        if not ids:
            return 0
        now = utcnow()
        ours = (
            one_of(RUN.id, ids),
            SyncRun.state == SyncRunState.RUNNING,
            SyncRun.lease_owner == self.worker_id,
        )
        with locked_write(self.rt.db) as session:
            result = session.execute(
                update(SyncRun)
                .where(*ours)
                .values(lease_expires_at=now + timedelta(seconds=self.rt.settings.lease_seconds))
                .execution_options(synchronize_session=False)
            )
            renewed = int(result.rowcount)  # type: ignore[attr-defined]
            if renewed != len(ids):
                held = set(session.scalars(select(SyncRun.id).where(*ours)))
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
        """Stop the renewing thread (waits up to 5 s for it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


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
    #: Set when the stored secrets cannot be decrypted (why; ``secrets`` is then empty): the run
    #: fails without calling the adapter.
    unreadable: str | None = None
    #: The secret fields stored but not readable (validation still counts them as present).
    unreadable_fields: frozenset[str] = frozenset()
    #: The request id of whoever queued the run (``None`` for scheduled work).
    request_id: str | None = None


def claim_run(rt: Runtime, run_id: str, worker_id: str, *, now: datetime | None = None) -> Claim | RunOutcome:
    """Take a queued, due run with a lease; or say why not.

    One conditional ``UPDATE … RETURNING`` takes the run (so two workers given the same id
    cannot both get it), one read loads the secrets, one the connection. (No activity entry:
    the run's one entry is written when it finishes.)
    """
    if len(run_id) > 40:
        return RunOutcome(run_id, OutcomeState.SKIPPED)
    with locked_write(rt.db) as session:
        return claim_in(rt, session, run_id, worker_id, now or utcnow())


def claim_in(rt: Runtime, session: Session, run_id: str, worker_id: str, now: datetime) -> Claim | RunOutcome:
    """:func:`claim_run` inside the caller's write transaction (a batch claims many runs in one)."""
    if len(run_id) > 40:
        return RunOutcome(run_id, OutcomeState.SKIPPED)
    taken = session.execute(
        CLAIM,
        {
            "run_id": run_id,
            "now": now,
            "owner": worker_id,
            "lease_until": now + timedelta(seconds=rt.settings.lease_seconds),
        },
    ).first()
    if taken is None:
        return _not_taken(session, run_id)
    # The secrets before the connection: on PostgreSQL each read sees what committed before it, so a
    # revoke (secrets deleted, state revoked, one transaction) between the two reads shows as a revoked
    # connection, never as an enabled one without its secrets.
    secrets, unreadable, unreadable_fields = _secrets(rt, session, taken.connection_id)
    conn = session.execute(CLAIMED_CONNECTION, {"connection_id": taken.connection_id}).first()
    adapter = rt.registry.find(conn.integration_key) if conn is not None else None
    if conn is None or conn.state != ConnectionState.ENABLED:
        _cancel(session, run_id, "The connection is not enabled any more.", now)
        return RunOutcome(run_id, OutcomeState.FAILED, error="connection not enabled")
    if health.is_suspended(conn):  # the adapter kill switch (services.support)
        _cancel(session, run_id, "An administrator suspended this integration.", now)
        return RunOutcome(run_id, OutcomeState.FAILED, error="integration suspended")
    if adapter is None or not adapter.supports_background_sync:
        _cancel(session, run_id, "This integration does not sync in the background.", now)
        return RunOutcome(run_id, OutcomeState.FAILED, error="sync not supported")
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
        unreadable=unreadable,
        unreadable_fields=unreadable_fields,
        request_id=taken.request_id,
    )


def _secrets(
    rt: Runtime, session: Session, connection_id: str
) -> tuple[dict[str, str], str | None, frozenset[str]]:
    """``(secrets, None, {})``, or ``({}, why, stored fields)`` when they cannot be decrypted."""
    try:
        return credentials.decrypt_connection_secrets(session, rt.keyring, connection_id), None, frozenset()
    except DecryptionFailed as exc:
        log.error("the stored secrets of connection %s cannot be decrypted: %s", connection_id, exc.message)
        stored = credentials.redacted_secrets(session, [connection_id])[connection_id]
        return {}, f"The stored credentials could not be decrypted: {exc.message}.", frozenset(stored)


def _not_taken(session: Session, run_id: str) -> RunOutcome:
    """Why a claim took nothing: the run is gone, not queued, or (with ``retry_at``) not due yet."""
    run = session.execute(RUN_STATE, {"run_id": run_id}).first()
    if run is not None and run.state == SyncRunState.QUEUED and run.next_attempt_at is not None:
        return RunOutcome(run_id, OutcomeState.SKIPPED, retry_at=run.next_attempt_at)  # not due yet
    return RunOutcome(run_id, OutcomeState.SKIPPED)


def _cancel(session: Session, run_id: str, reason: str, now: datetime) -> None:
    session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id)
        .values(
            state=SyncRunState.FAILED,
            error=reason,
            finished_at=now,
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=None,
        )
        .execution_options(synchronize_session=False)
    )
