"""Synced records: one generic table that sync and callbacks both write.

:func:`upsert_records` is the one way to store records. It is a single
``INSERT … ON CONFLICT (connection_id, kind, external_id) DO UPDATE`` per call
(SQLite ≥ 3.24 and PostgreSQL share the syntax; SQLAlchemy's dialect inserts
build it), so it needs no read first, cannot race with itself, and never moves a
record back to an older ``source_updated_at``:

* a record with a ``source_updated_at`` replaces the stored one only when that is
  not newer (equal timestamps: the later write wins);
* a record without one (the partner gives no timestamp) always replaces the data
  and keeps the stored timestamp.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Insert, Table, func, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tovplus.db.models import SyncedRecord
from tovplus.db.types import new_id, utcnow
from tovplus.errors import FieldIssue, InvalidInput
from tovplus.integrations.contract import RecordUpsert

MAX_KIND = 64
MAX_EXTERNAL_ID = 200
_TABLE = cast(Table, SyncedRecord.__table__)
_CONFLICT = ["connection_id", "kind", "external_id"]


def record_problems(records: Sequence[RecordUpsert]) -> list[FieldIssue]:
    """Why these records cannot be stored (empty or over-long keys, non-mapping data)."""
    problems: list[FieldIssue] = []
    for i, rec in enumerate(records):
        if not isinstance(rec.kind, str) or not 0 < len(rec.kind) <= MAX_KIND:
            problems.append(
                FieldIssue(f"records[{i}].kind", "invalid", f"kind must be 1 to {MAX_KIND} characters.")
            )
        if not isinstance(rec.external_id, str) or not 0 < len(rec.external_id) <= MAX_EXTERNAL_ID:
            problems.append(
                FieldIssue(
                    f"records[{i}].external_id",
                    "invalid",
                    f"external_id must be 1 to {MAX_EXTERNAL_ID} characters.",
                )
            )
        if rec.updated_at is not None and (
            not isinstance(rec.updated_at, datetime) or rec.updated_at.tzinfo is None
        ):
            problems.append(
                FieldIssue(f"records[{i}].updated_at", "invalid", "updated_at must be timezone-aware.")
            )
    return problems


def _newer_or_equal(candidate: datetime | None, current: datetime | None) -> bool:
    return candidate is None or current is None or candidate >= current


def _collapse(records: Sequence[RecordUpsert]) -> list[RecordUpsert]:
    """One record per key, as if they were applied in order; sorted by key (stable lock order)."""
    by_key: dict[tuple[str, str], RecordUpsert] = {}
    for rec in records:
        key = (rec.kind, rec.external_id)
        held = by_key.get(key)
        if held is None:
            by_key[key] = rec
        elif _newer_or_equal(rec.updated_at, held.updated_at):
            stamp = rec.updated_at if rec.updated_at is not None else held.updated_at
            by_key[key] = RecordUpsert(rec.kind, rec.external_id, rec.data, stamp)
    return [by_key[k] for k in sorted(by_key)]


def _statement(dialect: str) -> Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_TABLE)
    current = _TABLE.c.source_updated_at
    incoming = stmt.excluded.source_updated_at
    upsert = stmt.on_conflict_do_update(
        index_elements=_CONFLICT,
        set_={
            "data": stmt.excluded.data,
            "source_updated_at": func.coalesce(incoming, current),
            "updated_at": stmt.excluded.updated_at,
        },
        where=or_(incoming.is_(None), current.is_(None), incoming >= current),
    )
    # RETURNING counts exactly the rows written (a refused update returns nothing) on both
    # backends, and lets SQLAlchemy send the whole batch as one multi-row statement.
    return upsert.returning(_TABLE.c.id)


_STATEMENTS: dict[str, Insert] = {}


def upsert_records(session: Session, connection_id: str, records: Sequence[RecordUpsert]) -> int:
    """Create or replace ``records`` of one connection; return how many rows were written.

    Raises :class:`InvalidInput` (nothing written) when a record cannot be stored.
    Runs in the caller's transaction.
    """
    if not records:
        return 0
    problems = record_problems(records)
    if problems:
        raise InvalidInput("Some records cannot be stored.", fields=problems)
    dialect = session.get_bind().dialect.name
    stmt = _STATEMENTS.get(dialect)
    if stmt is None:
        stmt = _STATEMENTS[dialect] = _statement(dialect)
    now = utcnow()
    rows = [
        {
            "id": new_id("rec"),
            "connection_id": connection_id,
            "kind": rec.kind,
            "external_id": rec.external_id,
            "data": dict(rec.data),
            "source_updated_at": rec.updated_at,
            "updated_at": now,
        }
        for rec in _collapse(records)
    ]
    return len(session.execute(stmt, rows).all())
