"""Refused callbacks: every one counted in the database, and the ``callback.rejected`` entries.

Every 401 adds one to ``callback_rejections`` (connection, minute, reason), in the batch's own
transaction: one multi-row upsert per batch that has rejections (accepted callbacks never touch
the table), so every process's rejections add up in one place. Rows older than an hour are
pruned for the connections of the batch, at most once a minute per connection and process.
:func:`recent_rejections` sums the last hour for the connection views.

The activity entries themselves are rate-limited and coalesced (:mod:`.rejection_log`); this
module writes the rows it decides on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from tovplus.db.ids import new_ids
from tovplus.db.models import CallbackRejection
from tovplus.db.raw import db_json, db_time, from_db_time, placeholders
from tovplus.db.sql import binary_chunks, in_list_sql, one_of
from tovplus.db.types import utcnow
from tovplus.services.callbacks.authentication import REJECTION_SUMMARIES
from tovplus.services.callbacks.batch import Target, Tx
from tovplus.services.callbacks.store import insert_activity

#: How far back the counts shown on a connection reach.
WINDOW = timedelta(hours=1)
_TABLE = cast(Table, CallbackRejection.__table__)


@dataclass(frozen=True, slots=True)
class RejectionCounts:
    """A connection's refused callbacks in the last hour: how many per reason, and the latest."""

    by_reason: Mapping[str, int] = field(default_factory=dict)
    last_at: datetime | None = None

    @property
    def total(self) -> int:
        """Every refused callback of the window."""
        return sum(self.by_reason.values())


@dataclass(frozen=True, slots=True)
class RejectedEntry:
    """One ``callback.rejected`` entry to write.

    ``suppressed`` rejections were left out since the connection's last entry (by reason in
    ``suppressed_reasons``). A ``coalesced`` entry stands for those alone (written when no
    further rejection came to carry them); its ``reason`` is their most frequent one.
    """

    target: Target
    reason: str
    suppressed: int = 0
    suppressed_reasons: Mapping[str, int] = field(default_factory=dict)
    coalesced: bool = False


def minute_of(moment: datetime) -> datetime:
    """The start of the minute ``moment`` falls in (the counters' bucket)."""
    return moment.replace(second=0, microsecond=0)


# --- counting ---------------------------------------------------------------------------------------


def count_rejections(
    tx: Tx, rejections: Iterable[tuple[Target, str]], now: datetime, prune: Iterable[str] = ()
) -> None:
    """Add the batch's rejections to the counters; first drop the hour-old rows of ``prune``."""
    dialect = tx.dialect
    stale = sorted(set(prune))
    if stale:
        in_list, param = in_list_sql(dialect, stale)
        mark = placeholders(dialect, 1, 1)[1:-1]
        tx.cursor.execute(
            "DELETE FROM callback_rejections WHERE connection_id "  # noqa: S608 - placeholders only
            + in_list
            + " AND minute < "
            + mark,
            [param, db_time(dialect, minute_of(now) - WINDOW)],
        )
    counts: dict[tuple[str, str], int] = {}
    for target, reason in rejections:
        key = (target.connection_id, reason)
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return
    minute, stamp = db_time(dialect, minute_of(now)), db_time(dialect, now)
    rows = [(c, minute, r, n, stamp) for (c, r), n in sorted(counts.items())]  # stable lock order
    greatest = "max" if dialect == "sqlite" else "GREATEST"
    for chunk in binary_chunks(rows, 64):
        tx.cursor.execute(
            "INSERT INTO callback_rejections (connection_id, minute, reason, count, last_at)"  # noqa: S608
            " VALUES "  # only placeholders and a function name are interpolated
            + placeholders(dialect, 5, len(chunk))
            + " ON CONFLICT (connection_id, minute, reason) DO UPDATE SET"
            " count = callback_rejections.count + excluded.count,"
            f" last_at = {greatest}(callback_rejections.last_at, excluded.last_at)",
            [value for row in chunk for value in row],
        )


def recent_rejections(
    session: Session, connection_ids: list[str], now: datetime | None = None
) -> dict[str, RejectionCounts]:
    """``{connection id: counts of the last hour}`` for many connections in one query."""
    out = {cid: RejectionCounts() for cid in connection_ids}
    if not connection_ids:
        return out
    since = minute_of(now or utcnow()) - WINDOW + timedelta(minutes=1)
    rows = session.execute(
        select(_TABLE.c.connection_id, _TABLE.c.reason, func.sum(_TABLE.c.count), func.max(_TABLE.c.last_at))
        .where(one_of(_TABLE.c.connection_id, connection_ids), _TABLE.c.minute >= since)
        .group_by(_TABLE.c.connection_id, _TABLE.c.reason)
    ).all()
    found: dict[str, tuple[dict[str, int], datetime | None]] = {}
    for connection_id, reason, total, last_at in rows:
        by_reason, latest = found.setdefault(connection_id, ({}, None))
        by_reason[reason] = int(total)
        last = from_db_time(last_at)  # max() over a SQLite column gives its text
        if latest is None or (last is not None and last > latest):
            found[connection_id] = (by_reason, last)
    for connection_id, (by_reason, latest) in found.items():
        out[connection_id] = RejectionCounts(dict(sorted(by_reason.items())), latest)
    return out


# --- activity entries -------------------------------------------------------------------------------


def insert_rejections(tx: Tx, entries: list[RejectedEntry], now: datetime) -> None:
    """One ``callback.rejected`` activity entry per item of ``entries``, in one statement."""
    dialect = tx.dialect
    rows = []
    for entry, activity_id in zip(entries, new_ids("act", len(entries)), strict=True):
        target = entry.target
        rows.append(
            (
                activity_id,
                db_time(dialect, now),
                target.occasion_id,
                target.connection_id,
                target.integration_key,
                "callback.rejected",
                "system",
                _summary(entry)[:500],
                db_json(_details(entry)),
            )
        )
    insert_activity(tx.cursor, dialect, rows)


def _summary(entry: RejectedEntry) -> str:
    if entry.coalesced:
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(entry.suppressed_reasons.items()))
        plural = "" if entry.suppressed == 1 else "s"
        return f"Rejected {entry.suppressed} more callback{plural} since the last entry ({reasons})"
    summary = f"Rejected a callback: {REJECTION_SUMMARIES.get(entry.reason, entry.reason)}"
    if entry.suppressed:
        summary += f" ({entry.suppressed} more rejected since the last entry)"
    return summary


def _details(entry: RejectedEntry) -> dict[str, Any]:
    details: dict[str, Any] = {"reason": entry.reason, "suppressed_since_last_entry": entry.suppressed}
    if entry.suppressed:
        details["suppressed_reasons"] = dict(sorted(entry.suppressed_reasons.items()))
    if entry.coalesced:
        details["coalesced"] = True
    return details
