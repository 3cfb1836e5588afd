"""What an attempt produced (:class:`Verdict`) and what became of a run (:class:`RunOutcome`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from tovplus.integrations.contract import SyncResult

#: How an adapter call ended: a result, or which kind of failure.
VerdictKind = Literal["success", "credentials", "unreadable", "drift", "transient", "forbidden"]


class OutcomeState(StrEnum):
    """What became of one execution of a run (see :class:`RunOutcome`)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"
    SKIPPED = "skipped"
    LOST = "lost"
    DISCARDED = "discarded"


@dataclass(frozen=True, slots=True)
class Verdict:
    """How an attempt ended, before it is written."""

    kind: VerdictKind
    result: SyncResult | None = None
    message: str = ""
    reasons: tuple[str, ...] = ()
    #: Seconds the partner asked us to wait (``Retry-After``) before the next attempt.
    retry_after: float | None = None


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
    state: OutcomeState
    retry_at: datetime | None = None
    records: int = 0
    health: str | None = None
    error: str | None = None
    delivery_ids: tuple[str, ...] = ()
