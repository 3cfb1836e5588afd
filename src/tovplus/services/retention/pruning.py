"""Plan and prune: what the rules would delete, and deleting it in small batches.

A batch is a range of the rule's ``order`` index holding at most ``prune_batch_size`` rows
(found by a read, which never blocks writers), deleted in one short write transaction of
its own, children first. On SQLite the pruner then pauses (20 ms, or twice as long as the
delete took), so the callback writer and the workers waiting on the one write lock get it
between batches. Rows a rule keeps (unfinished work, the newest runs per connection) are skipped
by the range, not rescanned: a pass moves through the index once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Select, Table, delete, exists, func, select
from sqlalchemy.orm import Session

from tovplus.db.ids import id_floor
from tovplus.db.session import Database
from tovplus.db.types import utcnow
from tovplus.services.retention.rules import RULES, Rule
from tovplus.settings import Settings

#: The shortest pause between two batches on SQLite (seconds). A writer that finds the lock taken
#: sleeps in SQLite's busy handler in steps of 1, 2, 5, 10, 15, 20 … ms: pausing 20 ms (or twice the
#: delete's time) lets it wake up to a free lock instead of meeting the next batch.
MIN_PAUSE_SECONDS = 0.02


@dataclass
class TableCount:
    """Rows of one table that would go (a plan) or went (a prune)."""

    table: str
    rows: int
    #: Rows older than this go; ``None`` when the table's rows are kept for ever.
    older_than: datetime | None
    batches: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "rows": self.rows,
            "older_than": self.older_than.isoformat() if self.older_than else None,
            "batches": self.batches,
        }


@dataclass
class PruneReport:
    dry_run: bool
    tables: list[TableCount]
    #: False when the time budget ran out first; the same :class:`PrunePass` resumes it.
    complete: bool = True

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "complete": self.complete,
            "rows": self.rows,
            "tables": [t.as_dict() for t in self.tables],
        }


@dataclass
class PrunePass:
    """How far an unfinished pass got: the last ``order`` value handled per rule, the rules done."""

    now: datetime = field(default_factory=utcnow)
    position: dict[str, str] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)


def cutoff(rule: Rule, settings: Settings, now: datetime) -> datetime | None:
    """Rows older than this go; ``None``: the rule keeps everything (0 days)."""
    days = rule.retention_days(settings)
    return now - timedelta(days=days) if days > 0 else None


def eligible(
    rule: Rule, settings: Settings, older_than: datetime, *, after: str | None = None, upto: str | None = None
) -> list[ColumnElement[bool]]:
    """The conditions a row of ``rule`` meets to go, within ``(after, upto]`` of its order."""
    table = rule.table
    order = table.c[rule.order]
    conditions: list[ColumnElement[bool]] = [order < id_floor(rule.prefix, older_than)]
    if after is not None:
        conditions.append(order > after)
    if upto is not None:
        conditions.append(order <= upto)
    conditions += [_unindexed(table.c[column]).in_(values) for column, values in rule.only.items()]
    conditions += [_unindexed_set(table.c[column]) for column in rule.only_set]
    keep = rule.keep_newest.count(settings) if rule.keep_newest is not None else 0
    if rule.keep_newest is not None and keep > 0:
        newer = table.alias("newer")
        per = rule.keep_newest.per
        oldest_kept = (
            select(newer.c[rule.order])
            .where(
                newer.c[per] == table.c[per], *(_unindexed(newer.c[c]).in_(v) for c, v in rule.only.items())
            )
            .order_by(newer.c[rule.order].desc())
            .offset(keep - 1)
            .limit(1)
            .scalar_subquery()
        )
        conditions.append(order < oldest_kept)  # NULL (fewer than ``keep``): the row stays
    return conditions


def _unindexed(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """``column || ''``: the same value, but no index on ``column`` can serve the condition. Without
    statistics SQLite would otherwise walk the (state, …) index through every finished row
    instead of the order column's short range."""
    return column.concat("")


def _unindexed_set(column: ColumnElement[Any]) -> ColumnElement[bool]:
    """``coalesce(column, column) IS NOT NULL``: ``column IS NOT NULL`` that no index on ``column``
    can serve (for the same reason as :func:`_unindexed`; works for any column type)."""
    return func.coalesce(column, column).is_not(None)


def _keys(rule: Rule, conditions: Iterable[ColumnElement[bool]]) -> Select[Any]:
    return select(rule.table.c[rule.key]).where(*conditions)


def _count(session: Session, table: Table, *conditions: ColumnElement[bool]) -> int:
    return int(session.scalar(select(func.count()).select_from(table).where(*conditions)) or 0)


def plan(db: Database, settings: Settings, *, now: datetime | None = None) -> PruneReport:
    """What a prune would delete now, per table (children after their parent); changes nothing."""
    now = now or utcnow()
    tables: list[TableCount] = []
    with db.read() as session:
        for rule in RULES:
            older_than = cutoff(rule, settings, now)
            if older_than is None:
                tables.append(TableCount(rule.name, 0, None))
                tables += [TableCount(child.table.name, 0, None) for child in rule.children]
                continue
            conditions = eligible(rule, settings, older_than)
            tables.append(TableCount(rule.name, _count(session, rule.table, *conditions), older_than))
            for child in rule.children:
                column = child.table.c[child.column]
                rows = _count(session, child.table, column.in_(_keys(rule, conditions)))
                tables.append(TableCount(child.table.name, rows, older_than))
    return PruneReport(True, tables)


def prune(
    db: Database,
    settings: Settings,
    *,
    state: PrunePass | None = None,
    deadline: float | None = None,
    batch_size: int | None = None,
) -> PruneReport:
    """Delete what the rules let go, in batches; stop at ``deadline`` (``time.monotonic()``).

    Pass the same ``state`` again to resume an incomplete pass; its ``now`` fixes the cutoffs.
    """
    state = state or PrunePass()
    size = batch_size or settings.prune_batch_size
    tables: list[TableCount] = []
    for rule in RULES:
        older_than = cutoff(rule, settings, state.now)
        counts = [TableCount(rule.name, 0, older_than)]
        counts += [TableCount(child.table.name, 0, older_than) for child in rule.children]
        tables += counts
        if older_than is None:
            state.done.add(rule.name)
        if older_than is None or rule.name in state.done:
            continue
        for upto in _ranges(db, rule, state, older_than, size):
            _delete_batch(db, rule, settings, older_than, state.position.get(rule.name), upto, counts)
            if upto is None:
                state.done.add(rule.name)
                break
            state.position[rule.name] = upto
            if deadline is not None and time.monotonic() >= deadline:
                break
    complete = all(rule.name in state.done for rule in RULES)
    return PruneReport(False, tables, complete)


def _ranges(
    db: Database, rule: Rule, state: PrunePass, older_than: datetime, size: int
) -> Iterator[str | None]:
    """Upper ends of the next batches (``None``: the last one, up to the cutoff)."""
    order = rule.table.c[rule.order]
    floor = id_floor(rule.prefix, older_than)
    while True:
        after = state.position.get(rule.name)
        query = select(order).where(order < floor).order_by(order).offset(size - 1).limit(1)
        if after is not None:
            query = query.where(order > after)
        with db.read() as session:
            upto = session.scalar(query)
        yield upto
        if upto is None:
            return


def _delete_batch(
    db: Database,
    rule: Rule,
    settings: Settings,
    older_than: datetime,
    after: str | None,
    upto: str | None,
    counts: list[TableCount],
) -> None:
    """One write transaction: the batch's children, then the batch (skipped when nothing goes)."""
    conditions = eligible(rule, settings, older_than, after=after, upto=upto)
    with db.read() as session:
        if not session.scalar(select(exists().where(*conditions))):
            return
    started = time.perf_counter()
    with db.write() as session:
        children = [
            session.execute(
                delete(child.table).where(child.table.c[child.column].in_(_keys(rule, conditions)))
            )
            for child in rule.children
        ]
        results = [session.execute(delete(rule.table).where(*conditions)), *children]
    took = time.perf_counter() - started
    for count, result in zip(counts, results, strict=True):
        count.rows += max(0, cast(CursorResult[Any], result).rowcount)
        count.batches += 1
    if db.is_sqlite:
        time.sleep(max(MIN_PAUSE_SECONDS, 2 * took))
