"""Finishing an attempt: ONE transaction, conditional on still holding the run.

The run's end, the activity entry (``action.succeeded`` / ``action.failed``), the webhook outbox
rows (``integration.action_completed`` / ``integration.action_failed``) and, for rejected
credentials only, the connection's health (``failing``, through the health transitions: the
``integration.health_changed`` row and the "Needs attention" notice) commit together; a worker whose lease
was taken over finds nothing to update and writes nothing, so a run finishes exactly once.
A transient failure goes back to ``queued`` for ``TOVPLUS_ACTION_RETRY_DELAYS[attempt]`` (with
jitter); after the last delay it fails. Every attempt sends the same ``Idempotency-Key``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import update
from sqlalchemy.orm import Session

from tovplus.db.models import ActionRun, Connection
from tovplus.db.states import ActionRunState
from tovplus.db.types import utcnow
from tovplus.db.write_lock import locked_write
from tovplus.integrations.actions import ActionResult
from tovplus.integrations.contract import Health
from tovplus.integrations.redaction import redact_details
from tovplus.runtime import Runtime
from tovplus.services import activity, credentials, notifications, webhooks
from tovplus.services.actions.claim import ActionClaim
from tovplus.services.health import (
    authorization_of,
    effective_health,
    health_changed,
    validation_of,
    with_suspension,
)

AttemptKind = Literal["success", "credentials", "transient", "final"]
ACTION_COMPLETED_EVENT = "integration.action_completed"
ACTION_FAILED_EVENT = "integration.action_failed"
MAX_ERROR_CHARS = 1000
#: Each retry delay is multiplied by a factor in this range.
JITTER = (0.8, 1.2)


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one call of ``perform`` ended."""

    kind: AttemptKind
    result: ActionResult | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class FinishOutcome:
    state: str  # succeeded | failed | retrying | lost
    retry_at: datetime | None = None
    error: str | None = None
    delivery_ids: tuple[str, ...] = field(default=())


class _Lost(Exception):
    """The run is no longer ours: the transaction rolls back."""


def retry_delay(delays: tuple[float, ...], attempt: int) -> float | None:
    """Seconds to wait after failed attempt ``attempt`` (1-based), or ``None``: give up."""
    if attempt > len(delays):
        return None
    return float(delays[attempt - 1]) * random.uniform(*JITTER)


def finish_action_run(rt: Runtime, claim: ActionClaim, attempt: Attempt, *, worker_id: str) -> FinishOutcome:
    """Write the attempt's result in one transaction, if this worker still holds the run."""
    now = utcnow()
    try:
        with locked_write(rt.db) as session:
            if attempt.kind == "transient":
                delay = retry_delay(rt.settings.action_retry_delays, claim.attempt)
                if delay is not None:
                    retry_at = now + timedelta(seconds=delay)
                    _end(
                        session,
                        claim,
                        worker_id,
                        state=ActionRunState.QUEUED,
                        error=attempt.message,
                        next_attempt_at=retry_at,
                    )
                    return FinishOutcome("retrying", retry_at=retry_at, error=attempt.message)
            return _final(rt, session, claim, attempt, worker_id, now)
    except _Lost:
        return FinishOutcome("lost")


def _end(
    session: Session,
    claim: ActionClaim,
    worker_id: str,
    *,
    state: ActionRunState,
    error: str | None = None,
    summary: str | None = None,
    details: dict[str, Any] | None = None,
    next_attempt_at: datetime | None = None,
    finished_at: datetime | None = None,
) -> None:
    values: dict[str, Any] = {
        "state": state,
        "error": error[:MAX_ERROR_CHARS] if error else None,
        "lease_expires_at": None,
        "next_attempt_at": next_attempt_at,
        "finished_at": finished_at,
    }
    if state == ActionRunState.QUEUED:
        values["lease_owner"] = None
    else:
        values["summary"] = summary[:500] if summary else None
        values["details"] = details or {}
    result = session.execute(
        update(ActionRun)
        .where(
            ActionRun.id == claim.run_id,
            ActionRun.state == ActionRunState.RUNNING,
            ActionRun.lease_owner == worker_id,
            ActionRun.attempt == claim.attempt,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise _Lost


def _final(
    rt: Runtime, session: Session, claim: ActionClaim, attempt: Attempt, worker_id: str, now: datetime
) -> FinishOutcome:
    adapter = rt.registry.find(claim.integration_key)
    spec = adapter.action(claim.action_key) if adapter is not None else None
    label = spec.label if spec is not None else claim.action_key
    base = {
        "connection_id": claim.connection_id,
        "integration_key": claim.integration_key,
        "occasion_id": claim.occasion_id,
        "action_run_id": claim.run_id,
        "action_key": claim.action_key,
        "attempts": claim.attempt,
    }
    if attempt.kind == "success":
        assert attempt.result is not None
        summary = str(attempt.result.summary or "")[:500] or None
        details = redact_details(dict(attempt.result.details))
        _end(
            session,
            claim,
            worker_id,
            state=ActionRunState.SUCCEEDED,
            summary=summary,
            details=details,
            finished_at=now,
        )
        _activity(
            session,
            claim,
            "action.succeeded",
            f"{label} succeeded" + (f": {summary}" if summary else ""),
            {**base, "summary": summary},
        )
        ids = webhooks.emit_event(
            session,
            occasion_id=claim.occasion_id,
            event_type=ACTION_COMPLETED_EVENT,
            data={**base, "summary": summary},
        )
        return FinishOutcome("succeeded", delivery_ids=tuple(ids))
    error = attempt.message or "The action failed."
    if attempt.kind == "transient":
        error = f"{error} Gave up after {claim.attempt} attempts."
    _end(session, claim, worker_id, state=ActionRunState.FAILED, error=error, finished_at=now)
    moved = _credentials_failing(rt, session, claim, label, error) if attempt.kind == "credentials" else []
    _activity(session, claim, "action.failed", f"{label} failed: {error}", {**base, "error": error})
    failed = webhooks.emit_event(
        session, occasion_id=claim.occasion_id, event_type=ACTION_FAILED_EVENT, data={**base, "error": error}
    )
    return FinishOutcome("failed", error=error, delivery_ids=(*moved, *failed))


def _activity(session: Session, claim: ActionClaim, kind: str, summary: str, details: dict[str, Any]) -> None:
    activity.record(
        session,
        kind=kind,
        actor="system",
        summary=summary,
        occasion_id=claim.occasion_id,
        connection_id=claim.connection_id,
        integration_key=claim.integration_key,
        details={**details, "trigger": claim.trigger},
    )


def credentials_reason(label: str, message: str) -> str:
    """The health reason of an action whose credentials the partner rejected: what failed, why,
    and what the planner does about it."""
    return (
        f"{label} was refused by the partner: {message.rstrip('.')}. "
        "Update the credentials of this connection (or reconnect it), then run the action again."
    )


def _credentials_failing(
    rt: Runtime, session: Session, claim: ActionClaim, label: str, message: str
) -> list[str]:
    """Rejected credentials: the connection's health becomes ``failing`` with a reason a planner can
    act on, through the health transitions (``integration.health_changed`` and the "Needs
    attention" notice); any other final failure leaves health alone. Returns delivery ids."""
    conn = session.get(Connection, claim.connection_id, with_for_update=True)
    adapter = rt.registry.find(claim.integration_key)
    if conn is None or adapter is None:
        return []
    previous = conn.health
    reason = credentials_reason(label, message)
    present = frozenset(credentials.redacted_secrets(session, [conn.id])[conn.id])
    validation = validation_of(rt, adapter, conn, present, authorization_of(session, adapter, conn.id))
    health, reasons = with_suspension(
        conn, *effective_health(conn.state, validation, Health.FAILING.value, [reason])
    )
    session.execute(
        update(Connection)
        .where(Connection.id == conn.id)
        .values(
            sync_health=Health.FAILING.value,
            sync_health_reasons=[reason],
            health=health,
            health_reasons=reasons,
            version=Connection.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    change = notifications.HealthChange(
        conn.occasion_id, conn.id, conn.integration_key, previous, health, tuple(reasons)
    )
    notifications.health_changed(session, change, name=adapter.name)
    return health_changed(session, conn, previous=previous, health=health, reasons=reasons)
