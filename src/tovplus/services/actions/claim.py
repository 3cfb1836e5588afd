"""Claiming a queued action run with a lease, with what ``perform`` needs (secrets in memory only).

One conditional ``UPDATE … RETURNING`` takes the run (``queued`` and due → ``running``, one more
attempt), so of two workers given the same id one runs it and the other does nothing. A run
whose connection is no longer enabled or is suspended by an admin (the kill switch), whose
adapter or action is gone, or whose connection lost an action key the action needs, is claimed
with a ``refusal``: it fails without calling the partner (through the one finishing path, so it
too ends exactly once).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from tovplus.db.models import ActionRun, Connection
from tovplus.db.states import ActionRunState, ConnectionState
from tovplus.db.types import utcnow
from tovplus.db.write_lock import locked_write
from tovplus.runtime import Runtime
from tovplus.runtime.keyring import DecryptionFailed
from tovplus.services import credentials, health
from tovplus.services.actions.runs import missing_keys
from tovplus.services.auth import active_action_keys, subject_for

log = logging.getLogger(__name__)

#: The error of a run a worker reached while its adapter was suspended (it is not kept for resume).
SUSPENDED_REFUSAL = (
    "An administrator suspended this integration; the action was not sent. "
    "Ask for it again once it is resumed."
)


@dataclass(frozen=True, slots=True)
class ActionClaim:
    """A run this worker now holds."""

    run_id: str
    attempt: int
    action_key: str
    trigger: str
    input: Mapping[str, Any]
    connection_id: str
    occasion_id: str
    integration_key: str
    config: Mapping[str, Any]
    action_keys: frozenset[str]
    secrets: Mapping[str, str] = field(repr=False)
    started_at: datetime
    #: Why the run must fail without calling the partner (the connection is no longer enabled,
    #: the action or an action key it needs is gone, the secrets cannot be read); else ``None``.
    refusal: str | None = None


@dataclass(frozen=True, slots=True)
class NotClaimed:
    """Nothing was claimed: the run is gone, not queued, or (``retry_at``) not due yet."""

    run_id: str
    retry_at: datetime | None = None


def _state_now(session: Session, connection_id: str) -> str | None:
    """The connection's state as committed now (not the session's cached row)."""
    return session.scalar(select(Connection.state).where(Connection.id == connection_id))


def claim_action_run(
    rt: Runtime, run_id: str, worker_id: str, *, now: datetime | None = None
) -> ActionClaim | NotClaimed:
    """Take a queued, due run with a lease; or say why not."""
    now = now or utcnow()
    if len(run_id) > 40:
        return NotClaimed(run_id)
    with locked_write(rt.db) as session:
        taken = session.execute(
            update(ActionRun)
            .where(
                ActionRun.id == run_id,
                ActionRun.state == ActionRunState.QUEUED,
                or_(ActionRun.next_attempt_at.is_(None), ActionRun.next_attempt_at <= now),
            )
            .values(
                state=ActionRunState.RUNNING,
                attempt=ActionRun.attempt + 1,
                lease_owner=worker_id,
                lease_expires_at=now + timedelta(seconds=rt.settings.lease_seconds),
                started_at=func.coalesce(ActionRun.started_at, now),
            )
            .returning(
                ActionRun.connection_id,
                ActionRun.attempt,
                ActionRun.action_key,
                ActionRun.input,
                ActionRun.trigger,
            )
            .execution_options(synchronize_session=False)
        ).first()
        if taken is None:
            return _not_taken(session, run_id)
        conn = session.get(Connection, taken.connection_id)
        if conn is None:  # deleted with its runs (cascade): nothing left to finish
            return NotClaimed(run_id)
        refusal = _refusal(rt, session, conn, taken.action_key)
        secrets: dict[str, str] = {}
        if refusal is None:
            try:
                secrets = credentials.decrypt_connection_secrets(session, rt.keyring, conn.id)
            except DecryptionFailed as exc:
                log.error("the stored secrets of connection %s cannot be decrypted: %s", conn.id, exc.message)
                refusal = f"The stored credentials could not be decrypted: {exc.message}."
            if refusal is None and _state_now(session, conn.id) != ConnectionState.ENABLED:
                # revoked or disabled between the two reads (PostgreSQL reads what committed before
                # each statement): its secrets may already be gone
                refusal = "The connection is not enabled any more."
        return ActionClaim(
            run_id=run_id,
            attempt=taken.attempt,
            action_key=taken.action_key,
            trigger=taken.trigger,
            input=dict(taken.input or {}),
            connection_id=conn.id,
            occasion_id=conn.occasion_id,
            integration_key=conn.integration_key,
            config=dict(conn.config),
            action_keys=active_action_keys(session, subject_for(conn.id)),
            secrets=secrets,
            started_at=now,
            refusal=refusal,
        )


def _refusal(rt: Runtime, session: Session, conn: Connection | None, action_key: str) -> str | None:
    """Why the claimed run cannot be performed, or ``None``."""
    if conn is None or conn.state != ConnectionState.ENABLED:
        return "The connection is not enabled any more; the action was not sent."
    if health.is_suspended(conn):  # the adapter kill switch (services.support)
        return SUSPENDED_REFUSAL
    adapter = rt.registry.find(conn.integration_key)
    spec = adapter.action(action_key) if adapter is not None else None
    if spec is None:
        return "This integration has no such action any more."
    missing = missing_keys(spec, active_action_keys(session, subject_for(conn.id)))
    if missing:
        return f"The connection is no longer granted {', '.join(missing)}; the action was not sent."
    return None


def _not_taken(session: Session, run_id: str) -> NotClaimed:
    run = session.get(ActionRun, run_id)
    if run is not None and run.state == ActionRunState.QUEUED and run.next_attempt_at is not None:
        return NotClaimed(run_id, retry_at=run.next_attempt_at)
    return NotClaimed(run_id)
