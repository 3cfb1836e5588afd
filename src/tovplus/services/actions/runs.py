"""Asking for an action run: a queued row in ``action_runs``, in the caller's transaction.

A caller's run carries its ``idempotency_key`` (unique per connection: the same key again is
the same run, no second effect); a platform event's run is ``coalescing`` (at most one queued
per connection and action, so a burst of 300 guest changes queues one export).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import ActionRun, Connection
from tovplus.db.states import ActionRunState, ConnectionState
from tovplus.db.types import utcnow
from tovplus.errors import Conflict, NotFound
from tovplus.integrations.actions import ActionSpec
from tovplus.integrations.contract import Adapter
from tovplus.runtime import Runtime
from tovplus.services import activity, health
from tovplus.services.actions.views import ActionRunModel, run_view
from tovplus.services.auth import MANAGE, Caller, active_action_keys, authorize, subject_for


@dataclass(frozen=True, slots=True)
class Requested:
    """The run a request asked for, and whether this request created it."""

    run: ActionRunModel
    created: bool


def missing_keys(spec: ActionSpec, granted: frozenset[str]) -> list[str]:
    """The action keys ``spec`` needs that the connection does not hold."""
    return [k for k in spec.requires if k not in granted]


def _connection(session: Session, occasion_id: str, connection_id: str) -> Connection:
    row = session.get(Connection, connection_id) if len(connection_id) <= 40 else None
    if row is None or row.occasion_id != occasion_id:
        raise NotFound("No such connection.")
    return row


def _spec(adapter: Adapter | None, action_key: str) -> ActionSpec:
    spec = adapter.action(action_key) if adapter is not None and len(action_key) <= 64 else None
    if spec is None:
        raise NotFound("This integration has no such action.")
    return spec


def request_action(
    rt: Runtime,
    caller: Caller,
    occasion_id: str,
    connection_id: str,
    action_key: str,
    input: Mapping[str, Any],
    *,
    idempotency_key: str | None = None,
) -> Requested:
    """Queue a run of ``action_key`` on an enabled connection for ``caller``.

    Checked in this order: the occasion and connection (404), the action (404), the caller's
    idempotency key (an earlier run with it: that run, 200), the connection's state (409), the
    kill switch (409 ``integration_suspended``), the action keys it needs (409
    ``action_keys_missing``), the input (422 ``input.<key>``).
    """
    with rt.db.write() as session:
        authorize(session, caller, MANAGE, occasion_id)
        row = _connection(session, occasion_id, connection_id)
        spec = _spec(rt.registry.find(row.integration_key), action_key)
        if idempotency_key is not None:
            earlier = _by_idempotency_key(session, row.id, idempotency_key)
            if earlier is not None:
                return Requested(run_view(earlier), created=False)
        if row.state != ConnectionState.ENABLED:
            raise Conflict("Only enabled connections run actions.", code="connection_not_enabled")
        health.require_not_suspended(row)
        missing = missing_keys(spec, active_action_keys(session, subject_for(row.id)))
        if missing:
            raise Conflict(
                f"{spec.label} needs the connection to be granted {', '.join(missing)}.",
                code="action_keys_missing",
            )
        checked = spec.check_input(input, allow_private_urls=rt.settings.allow_private_urls)
        run = _insert(session, row, spec, checked, trigger=caller.subject_id, idempotency_key=idempotency_key)
        if run is None:  # the same key at the same moment: the other request's run
            assert idempotency_key is not None
            earlier = _by_idempotency_key(session, row.id, idempotency_key)
            assert earlier is not None
            return Requested(run_view(earlier), created=False)
        view = run_view(run)
    rt.dispatcher.action_run(view.id)
    return Requested(view, created=True)


def _by_idempotency_key(session: Session, connection_id: str, key: str) -> ActionRun | None:
    return session.scalar(
        select(ActionRun).where(ActionRun.connection_id == connection_id, ActionRun.idempotency_key == key)
    )


def queue_for_event(session: Session, row: Connection, spec: ActionSpec, event_type: str) -> str | None:
    """Queue a coalescing run for a platform event; ``None`` when one is already queued."""
    existing = session.scalar(
        select(ActionRun.id).where(
            ActionRun.connection_id == row.id,
            ActionRun.action_key == spec.key,
            ActionRun.state == ActionRunState.QUEUED,
            ActionRun.coalescing.is_(True),
        )
    )
    if existing is not None:
        return None
    run = _insert(session, row, spec, {}, trigger=f"event:{event_type}", coalescing=True)
    return run.id if run is not None else None


def _insert(
    session: Session,
    row: Connection,
    spec: ActionSpec,
    input: dict[str, Any],
    *,
    trigger: str,
    idempotency_key: str | None = None,
    coalescing: bool = False,
) -> ActionRun | None:
    """Insert a queued run and its ``action.queued`` entry; ``None`` if a unique index refused it."""
    now = utcnow()
    run = ActionRun(
        id=new_id("arun"),
        connection_id=row.id,
        action_key=spec.key,
        state=ActionRunState.QUEUED,
        trigger=trigger,
        coalescing=coalescing,
        idempotency_key=idempotency_key,
        input=input,
        attempt=0,
        next_attempt_at=now,
        details={},
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        return None
    activity.record(
        session,
        kind="action.queued",
        actor=trigger if not trigger.startswith("event:") else "system",
        summary=f"{spec.label} queued" + (f" ({trigger.removeprefix('event:')})" if coalescing else ""),
        occasion_id=row.occasion_id,
        connection_id=row.id,
        integration_key=row.integration_key,
        details={"action_run_id": run.id, "action_key": spec.key, "trigger": trigger},
    )
    return run
