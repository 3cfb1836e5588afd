"""Synced records: one generic table that sync and callbacks both write and planners read.

:func:`upsert_records` is the one way to store records. It is a single
``INSERT … ON CONFLICT (connection_id, kind, external_id) DO UPDATE … RETURNING``
per call (SQLite ≥ 3.35 and PostgreSQL share the syntax), so it needs no read
first, cannot race with itself, and never moves a record back to an older
``source_updated_at``:

* a record with a ``source_updated_at`` replaces the stored one only when that is
  not newer (equal timestamps: the later write wins);
* a record without one (the partner gives no timestamp) always replaces the data
  and keeps the stored timestamp.

It sends hand-written SQL through the session's own DBAPI connection (inside the
caller's transaction) because it sits on the callback hot path, where SQLAlchemy's
per-value type processing cost more than the database work. The helpers below
(:mod:`tovplus.db.raw` and :func:`tovplus.db.ids.new_ids`) write values in exactly the
form the ORM reads back; tests read them back through the ORM on both backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tovplus.db.ids import new_ids
from tovplus.db.models import SyncedRecord
from tovplus.db.raw import db_json, db_time, dbapi_cursor, placeholders
from tovplus.db.sql import binary_chunks
from tovplus.db.types import utcnow
from tovplus.errors import FieldIssue, InvalidInput
from tovplus.integrations.contract import RecordUpsert
from tovplus.integrations.payloads import format_timestamp
from tovplus.runtime.pagination import Page, page_of, paginate
from tovplus.runtime.views import View

MAX_KIND = 64
MAX_EXTERNAL_ID = 200
#: Most rows per statement (a power of two: see :func:`tovplus.db.sql.binary_chunks`), far
#: below SQLite's and PostgreSQL's bound-parameter limits.
CHUNK = 256

# --- records -----------------------------------------------------------------------------------


def record_problems(records: Sequence[RecordUpsert]) -> list[FieldIssue]:
    """Why these records cannot be stored (empty or over-long keys, naive timestamps)."""
    problems: list[FieldIssue] = []
    for i, rec in enumerate(records):
        kind, external_id, stamp = rec.kind, rec.external_id, rec.updated_at
        if type(kind) is str and 0 < len(kind) <= MAX_KIND:
            pass
        else:
            problems.append(
                FieldIssue(f"records[{i}].kind", "invalid", f"kind must be 1 to {MAX_KIND} characters.")
            )
        if type(external_id) is str and 0 < len(external_id) <= MAX_EXTERNAL_ID:
            pass
        else:
            problems.append(
                FieldIssue(
                    f"records[{i}].external_id",
                    "invalid",
                    f"external_id must be 1 to {MAX_EXTERNAL_ID} characters.",
                )
            )
        if stamp is not None and (not isinstance(stamp, datetime) or stamp.tzinfo is None):
            problems.append(
                FieldIssue(f"records[{i}].updated_at", "invalid", "updated_at must be timezone-aware.")
            )
    return problems


def _newer_or_equal(candidate: datetime | None, current: datetime | None) -> bool:
    return candidate is None or current is None or candidate >= current


def collapse(records: Sequence[RecordUpsert]) -> list[RecordUpsert]:
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


_UPSERT_TAIL = (
    " ON CONFLICT (connection_id, kind, external_id) DO UPDATE SET"
    " data = excluded.data,"
    " source_updated_at = COALESCE(excluded.source_updated_at, synced_records.source_updated_at),"
    " updated_at = excluded.updated_at"
    " WHERE excluded.source_updated_at IS NULL OR synced_records.source_updated_at IS NULL"
    " OR excluded.source_updated_at >= synced_records.source_updated_at"
)
_RETURNING = " RETURNING id"


def upsert_rows(
    cursor: Any, dialect: str, rows: Sequence[tuple[str, Sequence[RecordUpsert]]], *, count: bool = True
) -> int:
    """The statement itself: ``rows`` is ``[(connection_id, collapsed records), …]``, already checked.

    Returns the rows written; with ``count=False`` it skips ``RETURNING`` (one statement step
    instead of one per row) and returns how many rows were sent.
    """
    flat = [(connection_id, rec) for connection_id, records in rows for rec in records]
    if not flat:
        return 0
    now = db_time(dialect, utcnow())
    written = 0
    for chunk in binary_chunks(flat, CHUNK):
        params: list[Any] = []
        for record_id, (connection_id, rec) in zip(new_ids("rec", len(chunk)), chunk, strict=True):
            params += (
                record_id,
                connection_id,
                rec.kind,
                rec.external_id,
                db_json(dict(rec.data)),
                db_time(dialect, rec.updated_at),
                now,
            )
        sql = (  # only placeholders are interpolated
            "INSERT INTO synced_records"  # noqa: S608
            " (id, connection_id, kind, external_id, data, source_updated_at, updated_at) VALUES "
            + placeholders(dialect, 7, len(chunk), ((4, "JSONB"),))
            + _UPSERT_TAIL
        )
        if count:
            cursor.execute(sql + _RETURNING, params)
            written += len(cursor.fetchall())
        else:
            cursor.execute(sql, params)
            written += len(chunk)
    return written


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
    cursor, dialect = dbapi_cursor(session)
    try:
        return upsert_rows(cursor, dialect, [(connection_id, collapse(records))])
    finally:
        cursor.close()


# --- reading ------------------------------------------------------------------------------------


class RecordModel(View):
    """The contract's ``Record`` object: one synced record of a connection."""

    external_id: str
    kind: str
    data: dict[str, Any]
    updated_at: str


def record_view(row: SyncedRecord) -> RecordModel:
    """The contract's ``Record`` object for one stored row."""
    return RecordModel(
        external_id=row.external_id,
        kind=row.kind,
        data=row.data,
        updated_at=format_timestamp(row.updated_at),
    )


def list_records(
    session: Session, connection_id: str, *, limit: int | None, cursor: str | None
) -> Page[RecordModel]:
    """A connection's records, oldest first (the id is the cursor)."""
    query, size = paginate(
        select(SyncedRecord).where(SyncedRecord.connection_id == connection_id),
        SyncedRecord.id,
        limit=limit,
        cursor=cursor,
    )
    page = page_of(session.scalars(query).all(), size, lambda r: r.id)
    return Page([record_view(r) for r in page.items], page.next_cursor)
