"""Refused callbacks: every one counted in the database, and the ``callback.rejected`` entries.

Every 401 adds one to ``callback_rejections`` (connection, minute, reason), in the batch's own
transaction: one multi-row upsert per batch that has rejections (accepted callbacks never touch
the table), so every process's rejections add up in one place. Rows older than an hour are
pruned for the connections of the batch, at most once a minute per connection and process.
:func:`recent_rejections` (or a list's :class:`RecentRejections` column) sums the last hour for
the connection views.

The activity entries themselves are rate-limited and coalesced (:mod:`.rejection_log`); this
module writes the rows it decides on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, bindparam, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from tovplus.db.ids import new_ids
from tovplus.db.models import Connection
from tovplus.db.raw import db_json, db_time, from_db_time, placeholders
from tovplus.db.sql import binary_chunks, in_list_sql, one_of
from tovplus.db.types import UTCDateTime, utcnow
from tovplus.services.callbacks.authentication import REJECTION_SUMMARIES
from tovplus.services.callbacks.batch import Target, Tx
from tovplus.services.callbacks.store import insert_activity

#: How far back the counts shown on a connection reach.
WINDOW = timedelta(hours=1)


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


_SINCE = "rejections_since"


class RecentRejections(ColumnElement[str]):
    """The last hour's counters of the connection in the enclosing ``SELECT … FROM connections``,
    as one JSON text of ``[reason, count, last_at]`` rows (none: ``[]`` or NULL); a column, so a
    list reads them in its own query. Its window's start is the parameter :func:`window_params`
    gives (so a statement holding it can be built once); :func:`counts_from` reads the text."""

    type = String()
    inherit_cache = True
    _traverse_internals = [("since", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self) -> None:
        self.since = bindparam(_SINCE, type_=UTCDateTime())


def window_params(now: datetime | None = None) -> dict[str, datetime]:
    """The parameters of a statement holding a :class:`RecentRejections` column."""
    return {_SINCE: minute_of(now or utcnow()) - WINDOW + timedelta(minutes=1)}


_COUNTERS = "FROM callback_rejections AS r WHERE r.connection_id = connections.id AND r.minute >= {since})"


@compiles(RecentRejections)
def _json_postgresql(element: RecentRejections, compiler: SQLCompiler, **kw: Any) -> str:
    since = compiler.process(element.since, **kw)
    rows = "CAST(json_agg(json_build_array(r.reason, r.count, r.last_at)) AS TEXT)"
    return f"(SELECT {rows} " + _COUNTERS.format(since=since)


@compiles(RecentRejections, "sqlite")
def _json_sqlite(element: RecentRejections, compiler: SQLCompiler, **kw: Any) -> str:
    since = compiler.process(element.since, **kw)
    rows = "json_group_array(json_array(r.reason, r.count, r.last_at))"
    return f"(SELECT {rows} " + _COUNTERS.format(since=since)


_NONE = RejectionCounts()


def counts_from(text: str | None) -> RejectionCounts:
    """The counts a :class:`RecentRejections` column holds (one shared value for none)."""
    if not text or text == "[]":
        return _NONE
    by_reason: dict[str, int] = {}
    latest: datetime | None = None
    for reason, count, last_at in json.loads(text):
        by_reason[reason] = by_reason.get(reason, 0) + int(count)
        last = from_db_time(last_at)
        if latest is None or (last is not None and last > latest):
            latest = last
    return RejectionCounts(dict(sorted(by_reason.items())), latest)


def recent_rejections(
    session: Session, connection_ids: list[str], now: datetime | None = None
) -> dict[str, RejectionCounts]:
    """``{connection id: counts of the last hour}`` for many connections in one query."""
    if not connection_ids:
        return {}
    rows = session.execute(
        select(Connection.id, RecentRejections()).where(one_of(Connection.id, connection_ids)),
        window_params(now),
    ).all()
    found = {connection_id: counts_from(text) for connection_id, text in rows}
    return {cid: found.get(cid, _NONE) for cid in connection_ids}


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
