"""Finishing a run: the attempt's result in ONE transaction, conditional on still holding the lease.

Records, the run's end, the connection's health, ``last_sync_at``, the activity line and the
webhook outbox rows commit together, so a run whose lease was taken over cannot complete
twice. Failures map to health as the contract says: ``CredentialsRejected`` stops at once
with ``failing`` and a reason asking the planner to update the credentials, and so do stored
secrets that cannot be decrypted (a lost or foreign master key, damaged rows);
``PartnerUnavailable`` (5xx, timeouts, refused connections) and unexpected adapter errors are
retried after ``settings.sync_retry_delays`` (with jitter, never before the partner's
``Retry-After``) — the connection is ``degraded`` meanwhile, with the failure and the next
attempt's time — and then fail with ``failing``; ``DriftDetected`` and ``SyncResult.drift``
make health ``degraded`` with the reasons. A success makes it ``healthy`` again. Failed runs
in a row pause the schedule at ``settings.sync_pause_after_failures`` (``run_health``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tovplus.db.states import ConnectionState, SyncRunState
from tovplus.db.types import utcnow
from tovplus.db.write_lock import locked_write
from tovplus.integrations.contract import Adapter, Health
from tovplus.integrations.payloads import format_timestamp
from tovplus.runtime import Runtime
from tovplus.services import activity, notifications, webhooks
from tovplus.services.health import authorization_of, effective_health, validation_of
from tovplus.services.sync.changes import Changes, emit_records_changed, store_final
from tovplus.services.sync.lease import Claim
from tovplus.services.sync.outcome import OutcomeState, RunOutcome, Verdict
from tovplus.services.sync.retry import human_delay, max_attempts, retry_delay, retry_reason, sync_interval
from tovplus.services.sync.run_health import (
    Streak,
    announce,
    fold_into_previous,
    record_retry_health,
    streak_after,
)
from tovplus.services.sync.runs import SYSTEM
from tovplus.services.sync.statements import (
    END_RUN,
    FINISHING_CONNECTION,
    RECORD_SYNC,
    AnyRow,
)

SYNC_COMPLETED_EVENT = "integration.sync_completed"
MAX_ERROR_CHARS = 1000
#: The health reason of a run whose stored secrets could not be decrypted (the run's error says why).
UNREADABLE_REASON = "The stored credentials of this connection cannot be read any more; re-enter them."


class _Lost(Exception):
    """The run is no longer ours: the whole transaction rolls back."""


@dataclass(frozen=True, slots=True)
class _Finishing:
    """One finishing transaction: its session, the run held, by whom, and when."""

    session: Session
    claim: Claim
    worker_id: str
    now: datetime

    def end_run(
        self,
        state: SyncRunState,
        error: str | None,
        *,
        records: int = 0,
        deleted: int = 0,
        retry_at: datetime | None = None,
        retry_reason: str | None = None,
    ) -> None:
        """End (or re-queue) the run if it is still ours; a finished run keeps ``lease_owner`` as
        the record of who ran it, a re-queued one frees it."""
        queued = state == SyncRunState.QUEUED
        result = self.session.execute(
            END_RUN,
            {
                "run_id": self.claim.run_id,
                "owner": self.worker_id,
                "held_attempt": self.claim.attempt,
                "new_state": state,
                "new_owner": None if queued else self.worker_id,
                "new_next_attempt_at": retry_at,
                "new_finished_at": None if queued else self.now,
                "new_error": error,
                "new_records": records,
                "new_deleted": deleted,
                "new_retry_reason": retry_reason,
            },
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise _Lost


@dataclass(frozen=True, slots=True)
class _Ending:
    """How a final attempt ends the run, and what it says about the connection's health."""

    status: SyncRunState
    sync_health: Health
    reasons: list[str]
    error: str | None = None
    records: int = 0
    #: What a successful run changed, earlier checkpoints included.
    changes: Changes | None = None


def finish_run(rt: Runtime, claim: Claim, verdict: Verdict, *, worker_id: str) -> RunOutcome:
    """Write the attempt's result in one transaction, if this worker still holds the run."""
    try:
        with locked_write(rt.db) as session:
            return _finish(rt, _Finishing(session, claim, worker_id, utcnow()), verdict)
    except _Lost:
        return RunOutcome(claim.run_id, OutcomeState.LOST)


def finish_in(
    rt: Runtime, session: Session, claim: Claim, verdict: Verdict, *, worker_id: str, now: datetime
) -> RunOutcome:
    """:func:`finish_run` inside the caller's write transaction, in a savepoint of its own, so a
    run found taken over rolls back alone while the other runs of the batch commit."""
    try:
        with session.begin_nested():
            return _finish(rt, _Finishing(session, claim, worker_id, now), verdict)
    except _Lost:
        return RunOutcome(claim.run_id, OutcomeState.LOST)


def _finish(rt: Runtime, f: _Finishing, verdict: Verdict) -> RunOutcome:
    claim = f.claim
    if verdict.kind == "transient":
        delay = retry_delay(rt.settings, claim.attempt, verdict.retry_after)
        if delay is not None:
            return _retry(rt, f, verdict, delay)
    conn = f.session.execute(FINISHING_CONNECTION, {"connection_id": claim.connection_id}).first()
    if conn is None or conn.state != ConnectionState.ENABLED:
        f.end_run(
            SyncRunState.FAILED, "The connection was disabled or revoked while it synced; nothing was stored."
        )
        return RunOutcome(claim.run_id, OutcomeState.FAILED, error="connection not enabled")
    if conn.version != claim.version:
        f.end_run(
            SyncRunState.FAILED,
            "The connection was edited while it synced; nothing was stored "
            "and the next sync uses the new settings.",
        )
        return RunOutcome(claim.run_id, OutcomeState.DISCARDED, error="connection edited during the sync")
    adapter = rt.registry.get(conn.integration_key)
    ending = _store_success(f, conn, verdict) if verdict.kind == "success" else _fail(f, verdict)
    health, health_reasons = _record_sync(rt, f, adapter, conn, ending)
    _record_activity(f, adapter, conn, verdict, ending, health)
    _notify(f, adapter, conn, health, health_reasons)
    delivery_ids = announce(f.session, conn, health, health_reasons)
    delivery_ids += _emit_sync_completed(f, conn, ending, health, health_reasons)
    if ending.changes is not None:
        delivery_ids += emit_records_changed(f.session, conn, claim.run_id, ending.changes)
    return RunOutcome(
        claim.run_id,
        OutcomeState(ending.status),
        records=ending.records,
        health=health,
        error=ending.error,
        delivery_ids=tuple(delivery_ids),
    )


def _retry(rt: Runtime, f: _Finishing, verdict: Verdict, delay: float) -> RunOutcome:
    """Queue the run again for ``delay`` seconds from now; the connection is ``degraded`` meanwhile."""
    claim = f.claim
    retry_at = f.now + timedelta(seconds=delay)
    reason = retry_reason(
        verdict.message, next_attempt=claim.attempt + 1, attempts=max_attempts(rt.settings), at=retry_at
    )[:MAX_ERROR_CHARS]
    f.end_run(SyncRunState.QUEUED, verdict.message[:MAX_ERROR_CHARS], retry_at=retry_at, retry_reason=reason)
    health = record_retry_health(rt, f.session, claim, reason)
    activity.record(
        f.session,
        kind="sync.retrying",
        actor=SYSTEM,
        summary=f"Sync attempt {claim.attempt} failed; retrying in {human_delay(delay)}",
        occasion_id=claim.occasion_id,
        connection_id=claim.connection_id,
        integration_key=claim.integration_key,
        details={
            "sync_run_id": claim.run_id,
            "attempt": claim.attempt,
            "error": verdict.message,
            "next_attempt_at": format_timestamp(retry_at),
            "reason": reason,
        },
    )
    return RunOutcome(
        claim.run_id,
        OutcomeState.RETRYING,
        retry_at=retry_at,
        health=health.health,
        error=verdict.message,
        delivery_ids=tuple(health.delivery_ids),
    )


def _store_success(f: _Finishing, conn: AnyRow, verdict: Verdict) -> _Ending:
    """Store the changes and state, end the run; drift the partner reported makes health ``degraded``."""
    assert verdict.result is not None
    done = store_final(f.session, f.claim, verdict, f.now)
    f.end_run(SyncRunState.SUCCEEDED, None, records=done.upserted, deleted=done.deleted)
    drift = [str(r)[:500] for r in verdict.result.drift]
    health = Health.DEGRADED if drift else Health.HEALTHY
    return _Ending(SyncRunState.SUCCEEDED, health, drift, records=done.upserted, changes=done)


def _fail(f: _Finishing, verdict: Verdict) -> _Ending:
    """End the run as failed, with the health and reasons its kind of failure means."""
    if verdict.kind == "credentials":
        sync_health, reasons = Health.FAILING, [_credentials_reason(verdict.message)]
    elif verdict.kind == "unreadable":
        sync_health, reasons = Health.FAILING, [UNREADABLE_REASON]
    elif verdict.kind == "drift":
        sync_health, reasons = Health.DEGRADED, [str(r)[:500] for r in verdict.reasons]
    elif verdict.kind == "forbidden":
        sync_health, reasons = (
            Health.FAILING,
            [verdict.message + " Check the partner URL of this connection."],
        )
    else:  # transient, out of retries
        sync_health = Health.FAILING
        reasons = [
            f"{verdict.message} Gave up after {f.claim.attempt} attempts; "
            "the next scheduled sync will try again."
        ]
    error = verdict.message[:MAX_ERROR_CHARS]
    f.end_run(SyncRunState.FAILED, error)
    return _Ending(SyncRunState.FAILED, sync_health, reasons, error)


def _credentials_reason(message: str) -> str:
    hint = "Update the credentials of this connection."
    if "credential" in message.lower() or "api key" in message.lower():
        return message
    return f"{message} {hint}".strip()


def _record_sync(
    rt: Runtime, f: _Finishing, adapter: Adapter, conn: AnyRow, ending: _Ending
) -> tuple[str, list[str]]:
    """Write the attempt onto the connection; returns its new ``(health, health_reasons)``."""
    # unchanged since the claim (same version), so the secrets present are the ones it read (or could not)
    present = frozenset(f.claim.secrets) | f.claim.unreadable_fields
    validation = validation_of(rt, adapter, conn, present, authorization_of(f.session, adapter, conn.id))
    sync_health = ending.sync_health.value
    succeeded = ending.status == SyncRunState.SUCCEEDED
    streak = streak_after(rt, conn, succeeded=succeeded, now=f.now)
    sync_reasons = ending.reasons + ([streak.pause_reason] if streak.pause_reason else [])
    health, health_reasons = effective_health(conn.state, validation, sync_health, sync_reasons)
    f.session.execute(
        RECORD_SYNC,
        {
            "connection_id": conn.id,
            "new_sync_health": sync_health,
            "new_sync_reasons": sync_reasons,
            "new_health": health,
            "new_health_reasons": health_reasons,
            "new_last_sync_at": f.now,
            "new_status": ending.status,
            # the watermark for the next incremental pull: when this attempt started
            "new_last_success_at": f.claim.started_at if succeeded else None,
            "new_next_sync_at": _next_sync_at(rt, f, adapter, conn, streak),
            "new_failures_in_row": streak.failures,
            "new_paused_at": streak.paused_at,
        },
    )
    return health, health_reasons


def _next_sync_at(
    rt: Runtime, f: _Finishing, adapter: Adapter, conn: AnyRow, streak: Streak
) -> datetime | None:
    """One interval on; never while the schedule is paused (a manual sync resumes it)."""
    if streak.paused_at is not None:
        return None
    return f.now + sync_interval(rt.settings, adapter, conn.sync_interval_seconds)


def _record_activity(
    f: _Finishing, adapter: Adapter, conn: AnyRow, verdict: Verdict, ending: _Ending, health: str
) -> None:
    """``sync.completed`` or ``sync.failed``, with the health before and after."""
    claim = f.claim
    details: dict[str, Any] = {
        "sync_run_id": claim.run_id,
        "attempt": claim.attempt,
        "trigger": claim.trigger,
        "health": health,
    }
    if conn.health != health:
        details["previous_health"] = conn.health
    if ending.status == SyncRunState.SUCCEEDED:
        assert verdict.result is not None
        details["records_written"] = ending.records
        deleted = ending.changes.deleted if ending.changes is not None else 0
        if deleted:
            details["records_deleted"] = deleted
        if ending.reasons:
            details["drift"] = ending.reasons
        done = (verdict.result.summary or f"{ending.records} records updated") + (
            f", {deleted} marked deleted" if deleted else ""
        )
        kind = "sync.completed"
        summary = f"{adapter.name} sync completed: {done}" + (
            " (the partner's view has drifted)" if ending.reasons else ""
        )
    else:
        details["error"] = ending.error
        details["reasons"] = ending.reasons
        kind, summary = "sync.failed", f"{adapter.name} sync failed: {ending.reasons[0]}"
    routine = kind == "sync.completed" and not ending.reasons and "previous_health" not in details
    if routine and fold_into_previous(
        f.session, conn.id, kind, summary, {**details, "at": format_timestamp(f.now)}
    ):
        return
    activity.record(
        f.session,
        kind=kind,
        actor=SYSTEM,
        summary=summary,
        occasion_id=conn.occasion_id,
        connection_id=conn.id,
        integration_key=conn.integration_key,
        details=details,
    )


def _notify(f: _Finishing, adapter: Adapter, conn: AnyRow, health: str, reasons: list[str]) -> None:
    """A notice for the occasion's planners when the connection turns failing or recovers."""
    change = notifications.HealthChange(
        conn.occasion_id, conn.id, conn.integration_key, conn.health, health, tuple(reasons)
    )
    notifications.health_changed(f.session, change, name=adapter.name)


def _emit_sync_completed(
    f: _Finishing, conn: AnyRow, ending: _Ending, health: str, health_reasons: list[str]
) -> list[str]:
    """The ``integration.sync_completed`` outbox rows, in the finishing transaction."""
    return webhooks.emit_event(
        f.session,
        occasion_id=conn.occasion_id,
        event_type=SYNC_COMPLETED_EVENT,
        data={
            "connection_id": conn.id,
            "integration_key": conn.integration_key,
            "occasion_id": conn.occasion_id,
            "status": ending.status,
            "last_sync_at": format_timestamp(f.now),
            "sync_run_id": f.claim.run_id,
            "records_written": ending.records,
            "health": health,
            "health_reasons": health_reasons,
        },
    )
