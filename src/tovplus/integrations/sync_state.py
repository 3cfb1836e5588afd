"""Adapter-owned sync state, checkpoints and deletions: the parts of the contract about change.

* ``ctx.state`` is the adapter's own JSON (a cursor, a page token) from its last successful run,
  or from the run's last checkpoint when a run resumes after a crash; ``None`` on the first run
  and on a full run. The framework stores ``SyncResult.state`` (or, when that is ``None``, the
  last ``ctx.state``) when the run succeeds.
* ``ctx.checkpoint(state, records)`` commits a page of records together with the state that
  continues after it, in its own short transaction: a run that dies after page 40 resumes with
  ``ctx.state`` at page 41. Records given to a checkpoint are stored; do not return them again.
* :class:`RecordDelete` says the partner deleted a record. A full run (``ctx.full``) also marks
  every record of the connection it did not return as deleted.

This module imports nothing of the contract so :mod:`tovplus.integrations.contract` can use it
(the ``Checkpointer`` protocol and ``RecordChange`` live there, beside ``RecordUpsert``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

#: What an adapter may keep between runs: anything ``json.dumps`` takes (kept small: a cursor).
SyncState: TypeAlias = Any
#: Most bytes of JSON a state may take.
MAX_STATE_BYTES = 16_384


@dataclass(frozen=True, slots=True)
class RecordDelete:
    """The partner deleted the record ``(kind, external_id)``.

    ``deleted_at`` is when (the deletion's version time); without it the time it was received
    counts. A deletion older than the stored version is ignored, like any older version.
    """

    kind: str
    external_id: str
    deleted_at: datetime | None = None


class RunSuperseded(Exception):
    """A checkpoint was refused: this run is no longer the one that may write (its lease was
    taken over, or the connection was edited). Let it propagate; the framework ends the run."""


@dataclass(slots=True)
class MemoryCheckpoints:
    """The checkpointer of contexts built outside a worker (tests): keeps what it was given."""

    pages: list[tuple[SyncState, list[Any]]] = field(default_factory=list)

    def __call__(self, state: SyncState, records: Sequence[Any]) -> None:
        self.pages.append((state, list(records)))

    @property
    def records(self) -> list[Any]:
        """Every change checkpointed so far, in order."""
        return [rec for _, page in self.pages for rec in page]
