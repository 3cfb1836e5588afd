"""The scheduler and the reaper: which sync runs to queue, and which to take back.

One process at a time leads (a row in ``leases``, taken with a conditional update and
kept by renewing it every tick); only the leader ticks. A tick selects the due
connections through the ``(state, next_sync_at)`` index — enabled, adapter with
background sync, ``next_sync_at <= now`` — inserts a queued run for each (the unique
partial index ``uq_sync_runs_active_connection`` keeps at most one active run per
connection; a conflict is skipped, not an error), moves ``next_sync_at`` one interval on,
and returns the new run ids for the caller to dispatch.

The reaper re-queues runs whose lease expired (their worker died or hung) and hands back
queued runs that have waited past their ``next_attempt_at`` by more than ``grace`` (their
queue message was lost, e.g. the queue was wiped, or the retry was scheduled without a
queue): our tables are the truth, the queue only says "run this now".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tovplus.db.models import Connection, Lease, SyncRun, WebhookDelivery
from tovplus.db.types import new_id, utcnow
from tovplus.services.runtime import Runtime
from tovplus.services.syncs import ACTIVE_STATES, max_attempts, sync_interval

LEADER_LEASE = "scheduler"
#: Due connections handled per tick at most (the rest wait for the next tick).
TICK_LIMIT = 5000
_BATCH = 1000
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
    now = now or utcnow()
    with rt.db.read() as session:
        lease = session.get(Lease, LEADER_LEASE)
        return lease.holder if lease is not None and lease.expires_at >= now else None


# --- the tick ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TickResult:
    #: Runs created by this tick, to dispatch.
    run_ids: list[str]
    #: Due connections seen (some may already have had an active run).
    due: int


def due_connections(integration_keys: Sequence[str], now: datetime, limit: int) -> Select[Any]:
    """The tick's query: served by the ``(state, next_sync_at)`` index, oldest due first."""
    return (
        select(Connection.id, Connection.integration_key, Connection.sync_interval_seconds)
        .where(
            Connection.state == "enabled",
            Connection.next_sync_at <= now,
            Connection.integration_key.in_(integration_keys),
        )
        .order_by(Connection.next_sync_at)
        .limit(limit)
    )


def tick(rt: Runtime, *, now: datetime | None = None, limit: int = TICK_LIMIT) -> TickResult:
    """Queue a run for every due connection (one transaction per batch of 1000)."""
    now = now or utcnow()
    adapters = {a.integration_key: a for a in rt.registry if a.supports_background_sync}
    if not adapters:
        return TickResult([], 0)
    created: list[str] = []
    due = 0
    while due < limit:
        with rt.db.write() as session:
            rows = session.execute(due_connections(sorted(adapters), now, min(_BATCH, limit - due))).all()
            if not rows:
                break
            due += len(rows)
            created.extend(_queue_runs(session, [r.id for r in rows], now))
            by_interval: dict[timedelta, list[str]] = defaultdict(list)
            for row in rows:
                interval = sync_interval(
                    rt.settings, adapters[row.integration_key], row.sync_interval_seconds
                )
                by_interval[interval].append(row.id)
            for interval, ids in by_interval.items():
                session.execute(
                    update(Connection)
                    .where(Connection.id.in_(ids))
                    .values(next_sync_at=now + interval)
                    .execution_options(synchronize_session=False)
                )
        if len(rows) < _BATCH:
            break
    return TickResult(created, due)


def _queue_runs(session: Session, connection_ids: Sequence[str], now: datetime) -> list[str]:
    """Insert one queued run per connection unless it has an active one; return the new ids."""
    values = [
        {
            "id": new_id("run"),
            "connection_id": cid,
            "state": "queued",
            "trigger": "schedule",
            "requested_by": "system",
            "attempt": 0,
            "next_attempt_at": now,
            "records_written": 0,
            "created_at": now,
        }
        for cid in connection_ids
    ]
    stmt = (
        _insert(session)(SyncRun)
        .values(values)
        .on_conflict_do_nothing(index_elements=["connection_id"], index_where=_ACTIVE_PREDICATE)
        .returning(SyncRun.id)
    )
    return list(session.scalars(stmt))


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
    with rt.db.write() as session:
        expired = session.execute(
            select(SyncRun.id, SyncRun.attempt)
            .where(SyncRun.state == "running", SyncRun.lease_expires_at < now)
            .order_by(SyncRun.lease_expires_at)
            .limit(limit)
        ).all()
        again = [r.id for r in expired if r.attempt < attempts]
        spent = [r.id for r in expired if r.attempt >= attempts]
        condition = (SyncRun.state == "running", SyncRun.lease_expires_at < now)
        requeued: list[str] = []
        if again:
            requeued = list(
                session.scalars(
                    update(SyncRun)
                    .where(SyncRun.id.in_(again), *condition)
                    .values(
                        state="queued",
                        lease_owner=None,
                        lease_expires_at=None,
                        next_attempt_at=now,
                        error="The worker running this sync stopped; it was queued again.",
                    )
                    .returning(SyncRun.id)
                    .execution_options(synchronize_session=False)
                )
            )
        if spent:
            session.execute(
                update(SyncRun)
                .where(SyncRun.id.in_(spent), *condition)
                .values(
                    state="failed",
                    lease_owner=None,
                    lease_expires_at=None,
                    next_attempt_at=None,
                    finished_at=now,
                    error="The workers running this sync kept stopping; it was given up.",
                )
                .execution_options(synchronize_session=False)
            )
        overdue = list(
            session.scalars(
                select(SyncRun.id)
                .where(SyncRun.state == "queued", SyncRun.next_attempt_at <= now - grace_delta)
                .order_by(SyncRun.next_attempt_at)
                .limit(limit)
            )
        )
        if overdue:
            session.execute(
                update(SyncRun)
                .where(SyncRun.id.in_(overdue), SyncRun.state == "queued")
                .values(next_attempt_at=now)
                .execution_options(synchronize_session=False)
            )
    return list(dict.fromkeys([*requeued, *overdue]))


# --- queue depth -----------------------------------------------------------------------------------


def queue_depth(rt: Runtime) -> dict[str, int]:
    """Work waiting in our tables: queued and running sync runs, pending webhook deliveries."""
    with rt.db.read() as session:
        runs = dict(
            session.execute(
                select(SyncRun.state, func.count())
                .where(SyncRun.state.in_(ACTIVE_STATES))
                .group_by(SyncRun.state)
            ).all()
        )
        deliveries = dict(
            session.execute(
                select(WebhookDelivery.state, func.count())
                .where(WebhookDelivery.state.in_(("pending", "delivering")))
                .group_by(WebhookDelivery.state)
            ).all()
        )
    return {
        "sync_runs_queued": int(runs.get("queued", 0)),
        "sync_runs_running": int(runs.get("running", 0)),
        "webhook_deliveries_pending": int(deliveries.get("pending", 0)),
        "webhook_deliveries_delivering": int(deliveries.get("delivering", 0)),
    }
