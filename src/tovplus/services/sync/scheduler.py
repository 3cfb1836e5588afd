"""The scheduler and the reaper: which sync runs to queue, and which to take back.

One process at a time leads (a row in ``leases``, taken with a conditional update and
kept by renewing it every tick); only the leader ticks. A tick selects the due
connections through the ``(state, next_sync_at)`` index — enabled, adapter with
background sync, ``next_sync_at <= now``, no OAuth2 grant waiting to be reconnected —
inserts a queued run for each (the unique
partial index ``uq_sync_runs_active_connection`` keeps at most one active run per
connection; a conflict is skipped, not an error) and returns the new run ids for the caller
to dispatch. Connections with an active run are not due; finishing a run moves the
connection's ``next_sync_at`` one interval on (``services.sync.finish``).

The reaper re-queues runs whose lease expired (their worker died or hung) and hands back
queued runs that have waited past their ``next_attempt_at`` by more than ``grace`` (their
queue message was lost, e.g. the queue was wiped, or the retry was scheduled without a
queue): our tables are the truth, the queue only says "run this now".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import Connection, Lease, OAuthGrant, SyncRun, WebhookDelivery
from tovplus.db.sql import binary_chunks, one_of
from tovplus.db.states import ACTIVE_SYNC_STATES, ConnectionState, DeliveryState, SyncRunState
from tovplus.db.types import utcnow
from tovplus.integrations.auth import AuthorizationStatus
from tovplus.runtime import Runtime
from tovplus.services.sync.retry import max_attempts, sync_interval
from tovplus.services.sync.run_health import record_given_up
from tovplus.services.sync.runs import SYSTEM
from tovplus.services.sync.statements import CONNECTION, RUN

LEADER_LEASE = "scheduler"
#: Due connections handled per tick at most (the rest wait for the next tick).
TICK_LIMIT = 5000
_BATCH = 2000
_ACTIVE_PREDICATE = text("state IN ('queued', 'running')")


# --- leadership ----------------------------------------------------------------------------------


def _insert(session: Session) -> Any:
    """The dialect's ``insert`` (both have ``on_conflict_do_nothing``)."""
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def acquire_leadership(rt: Runtime, holder: str, *, ttl: float, now: datetime | None = None) -> bool:
    """Take or keep the scheduler lease for ``ttl`` seconds; True when ``holder`` leads now."""
    now = now or utcnow()
    expires = now + timedelta(seconds=ttl)
    with rt.db.write() as session:
        taken = session.execute(
            update(Lease)
            .where(Lease.name == LEADER_LEASE, (Lease.holder == holder) | (Lease.expires_at < now))
            .values(holder=holder, expires_at=expires)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            return True
        inserted = session.scalar(
            _insert(session)(Lease)
            .values(name=LEADER_LEASE, holder=holder, expires_at=expires)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(Lease.name)
        )
        return inserted is not None


def release_leadership(rt: Runtime, holder: str) -> None:
    """Give the lease up at once (a clean shutdown), so another process leads without waiting."""
    with rt.db.write() as session:
        session.execute(
            update(Lease)
            .where(Lease.name == LEADER_LEASE, Lease.holder == holder)
            .values(expires_at=utcnow() - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )


def current_leader(rt: Runtime, now: datetime | None = None) -> str | None:
    """Who holds the scheduler lease now, if anyone."""
    now = now or utcnow()
    with rt.db.read() as session:
        lease = session.get(Lease, LEADER_LEASE)
        return lease.holder if lease is not None and lease.expires_at >= now else None


# --- the tick ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one tick did."""

    #: Runs created by this tick, to dispatch.
    run_ids: list[str]
    #: Due connections seen (some may already have had an active run).
    due: int


_ACTIVE_RUN = text("sync_runs.state IN ('queued', 'running')")


def due_connections(integration_keys: Sequence[str], now: datetime, limit: int) -> Select[Any]:
    """The tick's query, oldest due first: served by the ``(state, next_sync_at)`` index, and for
    "has no active run" by the partial unique index on active runs (the predicate is spelled
    literally so SQLite can use that index)."""
    active = select(SyncRun.id).where(SyncRun.connection_id == Connection.id, _ACTIVE_RUN)
    refused = select(OAuthGrant.connection_id).where(
        OAuthGrant.connection_id == Connection.id,
        OAuthGrant.status == AuthorizationStatus.RECONNECT_REQUIRED.value,
    )
    return (
        select(Connection.id)
        .where(
            Connection.state == ConnectionState.ENABLED,
            Connection.next_sync_at <= now,
            Connection.suspended_at.is_(None),  # the adapter kill switch (services.support)
            Connection.integration_key.in_(integration_keys),
            ~active.exists(),
            ~refused.exists(),  # an OAuth2 grant the partner refused: nothing to sync until reconnected
        )
        .order_by(Connection.next_sync_at)
        .limit(limit)
    )


def tick(rt: Runtime, *, now: datetime | None = None, limit: int = TICK_LIMIT) -> TickResult:
    """Queue a run for every due connection without an active run (one transaction per 2,000).

    The connection rows are not written: a connection with an active run is not due, and
    finishing a run moves ``next_sync_at`` one interval on. So a tick writes only the new
    runs, however many connections there are.
    """
    now = now or utcnow()
    keys = sorted(a.integration_key for a in rt.registry if a.supports_background_sync)
    if not keys:
        return TickResult([], 0)
    created: list[str] = []
    due = 0
    while due < limit:
        with rt.db.write() as session:
            ids = list(session.scalars(due_connections(keys, now, min(_BATCH, limit - due))))
            if not ids:
                break
            due += len(ids)
            created.extend(_queue_runs(session, ids, now))
        if len(ids) < _BATCH:
            break
    return TickResult(created, due)


_QUEUE_RUNS: dict[str, Any] = {}


def _queue_runs_statement(session: Session) -> Any:
    """``INSERT … ON CONFLICT (connection_id) WHERE active DO NOTHING RETURNING id``, built once
    per dialect and run as an executemany (SQLAlchemy batches it into multi-row VALUES)."""
    dialect = session.get_bind().dialect.name
    stmt = _QUEUE_RUNS.get(dialect)
    if stmt is None:
        stmt = _QUEUE_RUNS[dialect] = (
            _insert(session)(SyncRun.__table__)
            .on_conflict_do_nothing(index_elements=["connection_id"], index_where=_ACTIVE_PREDICATE)
            .returning(SyncRun.__table__.c.id)
        )
    return stmt


#: PostgreSQL: the whole batch as two array parameters (a 9,000-parameter VALUES list costs more
#: to build and parse than the insert itself).
_QUEUE_RUNS_PG = text(
    "INSERT INTO sync_runs (id, connection_id, state, trigger, requested_by, attempt, next_attempt_at,"
    " records_written, created_at)"
    " SELECT t.id, t.connection_id, 'queued', 'schedule', 'system', 0, :now, 0, :now"
    " FROM unnest(CAST(:ids AS varchar[]), CAST(:connection_ids AS varchar[])) AS t(id, connection_id)"
    " ON CONFLICT (connection_id) WHERE state IN ('queued', 'running') DO NOTHING"
    " RETURNING id"
)


def _queue_runs(session: Session, connection_ids: Sequence[str], now: datetime) -> list[str]:
    """Insert one queued run per connection unless it has an active one; return the new ids."""
    if session.get_bind().dialect.name == "postgresql":
        params = {
            "ids": [new_id("run") for _ in connection_ids],
            "connection_ids": list(connection_ids),
            "now": now,
        }
        return list(session.scalars(_QUEUE_RUNS_PG, params))
    rows = [
        {
            "id": new_id("run"),
            "connection_id": cid,
            "state": SyncRunState.QUEUED,
            "trigger": "schedule",
            "requested_by": SYSTEM,
            "attempt": 0,
            "next_attempt_at": now,
            "records_written": 0,
            "created_at": now,
        }
        for cid in connection_ids
    ]
    statement = _queue_runs_statement(session)
    return [run_id for piece in binary_chunks(rows) for run_id in session.execute(statement, piece).scalars()]


# --- the reaper ----------------------------------------------------------------------------------


def reap(
    rt: Runtime, *, now: datetime | None = None, grace: float | None = None, limit: int = 1000
) -> list[str]:
    """Take back runs whose lease expired and return them, with overdue queued runs, to dispatch.

    A run whose lease expired goes back to ``queued`` (its attempt counts); one that has
    used up every attempt that way fails. A queued run still waiting ``grace`` seconds
    (default: the lease) after its ``next_attempt_at`` is handed out again and its
    ``next_attempt_at`` moved to now, so it is not handed out again for another ``grace``.
    A duplicate queue message is harmless: claiming is conditional.
    """
    now = now or utcnow()
    grace_delta = timedelta(seconds=rt.settings.lease_seconds if grace is None else grace)
    attempts = max_attempts(rt.settings)
    expired_query = (
        select(SyncRun.id, SyncRun.attempt)
        .where(SyncRun.state == SyncRunState.RUNNING, SyncRun.lease_expires_at < now)
        .order_by(SyncRun.lease_expires_at)
        .limit(limit)
    )
    overdue_query = (
        select(SyncRun.id)
        .where(SyncRun.state == SyncRunState.QUEUED, SyncRun.next_attempt_at <= now - grace_delta)
        .order_by(SyncRun.next_attempt_at)
        .limit(limit)
    )
    with rt.db.read() as session:  # the usual case: nothing to do, and no write lock taken
        if session.execute(expired_query.limit(1)).first() is None and (
            session.execute(overdue_query.limit(1)).first() is None
        ):
            return []
    with rt.db.write() as session:
        expired = session.execute(expired_query).all()
        requeued = _requeue_expired(session, [r.id for r in expired if r.attempt < attempts], now)
        _give_up_expired(rt, session, [r.id for r in expired if r.attempt >= attempts], now)
        overdue = _hand_out_overdue(session, list(session.scalars(overdue_query)), now)
    return list(dict.fromkeys([*requeued, *overdue]))


def _still_expired(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (SyncRun.state == SyncRunState.RUNNING, SyncRun.lease_expires_at < now)


def _requeue_expired(session: Session, run_ids: list[str], now: datetime) -> list[str]:
    """Back to ``queued``, due now, for runs with attempts left; returns those re-queued."""
    if not run_ids:
        return []
    return list(
        session.scalars(
            update(SyncRun)
            .where(one_of(RUN.id, run_ids), *_still_expired(now))
            .values(
                state=SyncRunState.QUEUED,
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=now,
                error="The worker running this sync stopped; it was queued again.",
            )
            .returning(SyncRun.id)
            .execution_options(synchronize_session=False)
        )
    )


def _give_up_expired(rt: Runtime, session: Session, run_ids: list[str], now: datetime) -> None:
    """Fail runs that used up every attempt; their connections are due again one interval on."""
    if not run_ids:
        return
    given_up = list(
        session.scalars(
            update(SyncRun)
            .where(one_of(RUN.id, run_ids), *_still_expired(now))
            .values(
                state=SyncRunState.FAILED,
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=None,
                finished_at=now,
                error="The workers running this sync kept stopping; it was given up.",
            )
            .returning(SyncRun.connection_id)
            .execution_options(synchronize_session=False)
        )
    )
    record_given_up(session, given_up)
    _postpone(rt, session, given_up, now)


def _hand_out_overdue(session: Session, run_ids: list[str], now: datetime) -> list[str]:
    """Move overdue queued runs' ``next_attempt_at`` to now; returns them, to dispatch again."""
    if run_ids:
        session.execute(
            update(SyncRun)
            .where(one_of(RUN.id, run_ids), SyncRun.state == SyncRunState.QUEUED)
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
    return run_ids


def _postpone(rt: Runtime, session: Session, connection_ids: Sequence[str], now: datetime) -> None:
    """Make given-up connections due again one interval later, not at the very next tick."""
    rows = session.execute(
        select(Connection.id, Connection.integration_key, Connection.sync_interval_seconds).where(
            one_of(CONNECTION.id, connection_ids)
        )
    ).all()
    for row in rows:
        adapter = rt.registry.find(row.integration_key)
        if adapter is not None:
            session.execute(
                update(Connection)
                .where(Connection.id == row.id)
                .values(next_sync_at=now + sync_interval(rt.settings, adapter, row.sync_interval_seconds))
                .execution_options(synchronize_session=False)
            )


# --- queue depth -----------------------------------------------------------------------------------


def queue_depth(rt: Runtime) -> dict[str, int]:
    """Work waiting in our tables: queued and running sync runs, pending webhook deliveries."""
    with rt.db.read() as session:
        runs = dict(
            session.execute(
                select(SyncRun.state, func.count())
                .where(SyncRun.state.in_(ACTIVE_SYNC_STATES))
                .group_by(SyncRun.state)
            ).all()
        )
        deliveries = dict(
            session.execute(
                select(WebhookDelivery.state, func.count())
                .where(WebhookDelivery.state.in_((DeliveryState.PENDING, DeliveryState.DELIVERING)))
                .group_by(WebhookDelivery.state)
            ).all()
        )
    return {
        "sync_runs_queued": int(runs.get(SyncRunState.QUEUED, 0)),
        "sync_runs_running": int(runs.get(SyncRunState.RUNNING, 0)),
        "webhook_deliveries_pending": int(deliveries.get(DeliveryState.PENDING, 0)),
        "webhook_deliveries_delivering": int(deliveries.get(DeliveryState.DELIVERING, 0)),
    }
