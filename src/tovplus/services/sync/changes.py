"""What a run changes: its records and deletions, its checkpoints, its state, its change event.

* :func:`resume_point` reads what a claimed run starts from: the run's last checkpoint (a run
  resumed after a crash or a retry), else the connection's stored state; a full run starts from
  nothing.
* :class:`RunCheckpoints` is the run's ``ctx.checkpoint``: each call commits a page of changes and
  the state after it in its own short transaction, conditional on the run still being ours and
  the connection unedited (else :class:`~tovplus.integrations.sync_state.RunSuperseded`).
* :func:`store_final` writes the last page inside the finishing transaction: a full run then marks
  what it did not see as deleted, and the final state goes onto the connection.
* :func:`emit_records_changed` is the ``integration.records_changed`` event of a run that changed
  something.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from tovplus.db.states import SyncRunState, SyncTrigger
from tovplus.db.types import utcnow
from tovplus.db.write_lock import locked_write
from tovplus.errors import FieldIssue, InvalidInput
from tovplus.integrations.contract import RecordChange, RecordUpsert
from tovplus.integrations.sync_state import MAX_STATE_BYTES, RecordDelete, RunSuperseded, SyncState
from tovplus.runtime import Runtime
from tovplus.services import records as record_store
from tovplus.services import webhooks
from tovplus.services.sync.lease import Claim
from tovplus.services.sync.outcome import Verdict
from tovplus.services.sync.statements import (
    CONNECTION,
    CONNECTIONS,
    RUN,
    RUN_CHECKPOINT,
    RUNS,
    STORE_SYNC_STATE,
    AnyRow,
)

RECORDS_CHANGED_EVENT = "integration.records_changed"
SUPERSEDED = "The run was superseded (the connection was edited, or another worker took it over)."

_OURS = (
    RUN.id == bindparam("run_id"),
    RUN.state == SyncRunState.RUNNING,
    RUN.lease_owner == bindparam("owner"),
    RUN.attempt == bindparam("held_attempt"),
)


@dataclass(frozen=True, slots=True)
class Changes:
    """What a run (so far) changed: records written, records deleted, and their kinds."""

    upserted: int = 0
    deleted: int = 0
    kinds: tuple[str, ...] = ()

    def __add__(self, other: Changes) -> Changes:
        kinds = tuple(sorted(set(self.kinds) | set(other.kinds)))
        return Changes(self.upserted + other.upserted, self.deleted + other.deleted, kinds)

    @property
    def any(self) -> bool:
        return bool(self.upserted or self.deleted)

    @staticmethod
    def of(checkpoint: Any) -> Changes:
        """The counts a stored checkpoint carries (none for a run without one)."""
        if not isinstance(checkpoint, dict):
            return Changes()
        kinds = checkpoint.get("kinds")
        return Changes(
            int(checkpoint.get("upserted") or 0),
            int(checkpoint.get("deleted") or 0),
            tuple(str(k) for k in kinds) if isinstance(kinds, list) else (),
        )


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a claimed run starts: the adapter's state, whether it is full, and since when it runs."""

    state: SyncState
    full: bool
    #: When the run's first attempt started (a full run's deletion check counts from it).
    since: datetime | None
    #: What earlier attempts of this run already committed through checkpoints.
    committed: Changes = field(default_factory=Changes)


def resume_point(rt: Runtime, claim: Claim) -> ResumePoint:
    """The run's last checkpoint if it has one, else the connection's state (none for a full run)."""
    full = claim.trigger == SyncTrigger.FULL
    with rt.db.read() as session:
        row = session.execute(
            select(RUN.checkpoint, RUN.started_at, CONNECTION.sync_state)
            .join(CONNECTIONS, CONNECTION.id == RUN.connection_id)
            .where(RUN.id == claim.run_id)
        ).first()
    if row is None:
        return ResumePoint(None, full, None)
    if isinstance(row.checkpoint, dict):
        return ResumePoint(row.checkpoint.get("state"), full, row.started_at, Changes.of(row.checkpoint))
    return ResumePoint(None if full else row.sync_state, full, row.started_at)


def checked_state(state: SyncState) -> SyncState:
    """``state`` if it can be stored (JSON, at most ``MAX_STATE_BYTES``); else :class:`InvalidInput`."""
    try:
        size = len(json.dumps(state, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            "The integration's sync state is not JSON.", fields=[FieldIssue("state", "invalid", str(exc))]
        ) from exc
    if size > MAX_STATE_BYTES:
        raise InvalidInput(
            "The integration's sync state is too large.",
            fields=[FieldIssue("state", "too_long", f"at most {MAX_STATE_BYTES} bytes of JSON")],
        )
    return state


def split(changes: Sequence[RecordChange]) -> tuple[list[RecordUpsert], list[RecordDelete]]:
    """Upserts and deletions, each in the order given."""
    upserts = [c for c in changes if isinstance(c, RecordUpsert)]
    deletes = [c for c in changes if isinstance(c, RecordDelete)]
    return upserts, deletes


def store_changes(
    session: Session, connection_id: str, changes: Sequence[RecordChange], *, full: bool, now: datetime
) -> Changes:
    """Write one page of changes in the caller's transaction; a full run marks them seen."""
    upserts, deletes = split(changes)
    written = record_store.upsert_records(session, connection_id, upserts)
    deleted = record_store.delete_records(session, connection_id, deletes) if deletes else 0
    if full and changes:
        record_store.mark_seen(session, connection_id, [(c.kind, c.external_id) for c in changes], now)
    kinds = {c.kind for c in upserts} if written else set()
    kinds |= {c.kind for c in deletes} if deleted else set()
    return Changes(written, deleted, tuple(sorted(kinds)))


class RunCheckpoints:
    """``ctx.checkpoint`` of one claimed run: each page and its state in one short transaction."""

    def __init__(self, rt: Runtime, claim: Claim, worker_id: str, point: ResumePoint) -> None:
        self.rt, self.claim, self.worker_id, self.full = rt, claim, worker_id, point.full

    def __call__(self, state: SyncState, records: Sequence[RecordChange]) -> None:
        state = checked_state(state)
        problems = record_store.record_problems(list(records))
        if problems:
            raise InvalidInput("Some records cannot be stored.", fields=problems)
        with locked_write(self.rt.db) as session:
            committed = self._commit(session, state, records)
        if not committed:
            self._superseded()

    def _commit(self, session: Session, state: SyncState, changes: Sequence[RecordChange]) -> bool:
        claim = self.claim
        ours = {"run_id": claim.run_id, "owner": self.worker_id, "held_attempt": claim.attempt}
        held = session.execute(select(RUN.checkpoint).where(*_OURS).with_for_update(), ours).first()
        version = session.scalar(select(CONNECTION.version).where(CONNECTION.id == claim.connection_id))
        if held is None or version != claim.version:
            return False
        done = Changes.of(held.checkpoint) + store_changes(
            session, claim.connection_id, changes, full=self.full, now=utcnow()
        )
        session.execute(
            update(RUNS).where(*_OURS).values(checkpoint=_checkpoint(state, done)),
            ours,
        )
        return True

    def _superseded(self) -> None:
        """Forget the checkpoint of a run whose connection was edited (it belongs to old settings)."""
        with locked_write(self.rt.db) as session:
            session.execute(
                update(RUNS)
                .where(RUN.id == self.claim.run_id, RUN.lease_owner == self.worker_id)
                .values(checkpoint=None)
            )
        raise RunSuperseded(SUPERSEDED)


def _checkpoint(state: SyncState, done: Changes) -> dict[str, Any]:
    return {"state": state, "upserted": done.upserted, "deleted": done.deleted, "kinds": list(done.kinds)}


def with_final_state(verdict: Verdict, state: SyncState) -> Verdict:
    """A success keeps ``result.state``; when the adapter gave none, the last ``ctx.state``.

    A state that cannot be stored makes the attempt fail (transient, like unstorable records).
    """
    result = verdict.result
    if verdict.kind != "success" or result is None:
        return verdict
    final = state if result.state is None else result.state
    try:
        checked_state(final)
    except InvalidInput as exc:
        return Verdict("transient", message=exc.message)
    return replace(verdict, result=replace(result, state=final))


def store_final(session: Session, claim: Claim, verdict: Verdict, now: datetime) -> Changes:
    """Write a successful run's last page and its state; a full run marks the unseen deleted.

    Returns what the whole run changed (earlier checkpoints included). Runs in the finishing
    transaction, which holds the run (so its checkpoint cannot move meanwhile).
    """
    assert verdict.result is not None
    result = verdict.result
    full = claim.trigger == SyncTrigger.FULL
    run = session.execute(RUN_CHECKPOINT, {"run_id": claim.run_id}).first()
    done = Changes.of(run.checkpoint if run is not None else None)
    done += store_changes(session, claim.connection_id, list(result.records), full=full, now=now)
    if full:
        since = run.started_at if run is not None and run.started_at is not None else claim.started_at
        count, kinds = record_store.delete_unseen(session, claim.connection_id, since, now)
        done += Changes(0, count, tuple(kinds))
    session.execute(STORE_SYNC_STATE, {"connection_id": claim.connection_id, "new_sync_state": result.state})
    return done


def emit_records_changed(session: Session, conn: AnyRow, run_id: str, done: Changes) -> list[str]:
    """The ``integration.records_changed`` outbox rows when the run changed something."""
    if not done.any:
        return []
    return webhooks.emit_event(
        session,
        occasion_id=conn.occasion_id,
        event_type=RECORDS_CHANGED_EVENT,
        data={
            "connection_id": conn.id,
            "integration_key": conn.integration_key,
            "occasion_id": conn.occasion_id,
            "upserted": done.upserted,
            "deleted": done.deleted,
            "kinds": list(done.kinds),
            "sync_run_id": run_id,
        },
    )
