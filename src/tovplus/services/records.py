"""Synced records: one generic table that sync and callbacks both write and planners read.

:func:`upsert_records` is the one way to store records. It is a single
``INSERT … ON CONFLICT (connection_id, kind, external_id) DO UPDATE … RETURNING``
per call (SQLite ≥ 3.35 and PostgreSQL share the syntax), so it needs no read
first, cannot race with itself, and never replaces a record by an older version of itself:

* a record's version time (``version_at``) is the partner's ``updated_at`` when it gives one,
  else the time TOV Plus received it; a write replaces the stored row only when its version is
  not older (equal: the later write wins), so a callback without a timestamp is not undone by a
  later sync's older snapshot;
* a replaced record is no longer deleted; ``source_updated_at`` keeps the partner's last stamp.

Deletions (:func:`delete_records`, and :func:`delete_unseen` for a full run) are versions too:
an older deletion is ignored, and a deleted record comes back only with a newer version.

It sends hand-written SQL through the session's own DBAPI connection (inside the
caller's transaction) because it sits on the callback hot path, where SQLAlchemy's
per-value type processing cost more than the database work. The helpers below
(:mod:`tovplus.db.raw` and :func:`tovplus.db.ids.new_ids`) write values in exactly the
form the ORM reads back; tests read them back through the ORM on both backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from tovplus.db.ids import new_ids
from tovplus.db.models import SyncedRecord
from tovplus.db.raw import JSON_DOC, TEXT, TIME, db_json, db_time, dbapi_cursor, row_params, row_source
from tovplus.db.sql import binary_chunks, one_of
from tovplus.db.types import UTCDateTime, utcnow
from tovplus.errors import FieldIssue, InvalidInput
from tovplus.integrations.contract import RecordUpsert
from tovplus.integrations.payloads import format_timestamp
from tovplus.integrations.sync_state import RecordDelete
from tovplus.runtime.pagination import Page, page_of, paginate
from tovplus.runtime.views import View

MAX_KIND = 64
MAX_EXTERNAL_ID = 200
#: Most rows per statement (a power of two: see :func:`tovplus.db.sql.binary_chunks`), far
#: below SQLite's and PostgreSQL's bound-parameter limits.
CHUNK = 256

# --- records -----------------------------------------------------------------------------------


def record_problems(records: Sequence[RecordUpsert | RecordDelete]) -> list[FieldIssue]:
    """Why these records (or deletions) cannot be stored (empty or over-long keys, naive times)."""
    problems: list[FieldIssue] = []
    for i, rec in enumerate(records):
        stamp = rec.updated_at if isinstance(rec, RecordUpsert) else rec.deleted_at
        kind, external_id = rec.kind, rec.external_id
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


def version_of(stamp: datetime | None, received: datetime) -> datetime:
    """A version's time: the partner's ``updated_at`` when given, else when it was received."""
    return received if stamp is None else stamp


def collapse(records: Sequence[RecordUpsert], received: datetime | None = None) -> list[RecordUpsert]:
    """One record per key, as if they were applied in order; sorted by key (stable lock order).

    An untimed record counts as received at ``received`` (now), like :func:`upsert_rows` stores it.
    """
    received = received or utcnow()
    by_key: dict[tuple[str, str], RecordUpsert] = {}
    for rec in records:
        key = (rec.kind, rec.external_id)
        held = by_key.get(key)
        if held is None or version_of(rec.updated_at, received) >= version_of(held.updated_at, received):
            by_key[key] = rec
    return [by_key[k] for k in sorted(by_key)]


#: The stored version of a row (rows written before migration 0006 have no ``version_at``).
STORED_VERSION = (
    "COALESCE(synced_records.version_at, synced_records.source_updated_at, synced_records.updated_at)"
)
_RECORD_TYPES = (TEXT, TEXT, TEXT, TEXT, JSON_DOC, TIME, TIME, TIME)
_UPSERT_TAIL = (
    " ON CONFLICT (connection_id, kind, external_id) DO UPDATE SET"
    " data = excluded.data,"
    " source_updated_at = COALESCE(excluded.source_updated_at, synced_records.source_updated_at),"
    " version_at = excluded.version_at,"
    " deleted_at = NULL,"
    " updated_at = excluded.updated_at"
    # newer versions replace; the same version only when it says something new (a partner's
    # "updated since" is inclusive, so its boundary record comes back unchanged: not a change)
    " WHERE excluded.version_at > "
    + STORED_VERSION
    + " OR (excluded.version_at = "
    + STORED_VERSION
    + " AND (synced_records.deleted_at IS NOT NULL OR synced_records.data IS DISTINCT FROM excluded.data))"
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
    received = utcnow()
    now = db_time(dialect, received)
    written = 0
    for chunk in binary_chunks(flat, CHUNK):
        values = []
        for record_id, (connection_id, rec) in zip(new_ids("rec", len(chunk)), chunk, strict=True):
            stamp = rec.updated_at
            values.append(
                (
                    record_id,
                    connection_id,
                    rec.kind,
                    rec.external_id,
                    db_json(dict(rec.data)),
                    db_time(dialect, stamp),
                    now if stamp is None else db_time(dialect, stamp),
                    now,
                )
            )
        params = row_params(dialect, values)
        sql = (  # only placeholders are interpolated
            "INSERT INTO synced_records"
            " (id, connection_id, kind, external_id, data, source_updated_at, version_at, updated_at) "
            + row_source(dialect, _RECORD_TYPES, len(chunk))
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


def delete_records(session: Session, connection_id: str, deletes: Sequence[RecordDelete]) -> int:
    """Mark records deleted unless the stored version is newer; returns how many were marked.

    A deletion of a record never stored, or already deleted, changes nothing.
    """
    problems = record_problems(deletes)
    if problems:
        raise InvalidInput("Some deletions cannot be stored.", fields=problems)
    now = utcnow()
    marked = 0
    for d in deletes:
        result = session.execute(
            _DELETE,
            {
                "b_connection_id": connection_id,
                "b_kind": d.kind,
                "b_external_id": d.external_id,
                "now": now,
                "version": version_of(d.deleted_at, now),
            },
        )
        marked += int(result.rowcount)  # type: ignore[attr-defined]
    return marked


def mark_seen(session: Session, connection_id: str, keys: Sequence[tuple[str, str]], now: datetime) -> None:
    """Note that a full run saw these ``(kind, external_id)`` (whether or not it replaced them)."""
    by_kind: dict[str, list[str]] = {}
    for kind, external_id in keys:
        by_kind.setdefault(kind, []).append(external_id)
    for kind, ids in sorted(by_kind.items()):
        for chunk in binary_chunks(sorted(set(ids)), CHUNK):
            session.execute(
                update(SyncedRecord)
                .where(
                    SyncedRecord.connection_id == connection_id,
                    SyncedRecord.kind == kind,
                    one_of(_RECORD.external_id, chunk),
                )
                .values(seen_at=now)
                .execution_options(synchronize_session=False)
            )


def delete_unseen(
    session: Session, connection_id: str, since: datetime, now: datetime
) -> tuple[int, list[str]]:
    """A full run that started at ``since`` is done: mark deleted every live record it neither
    wrote nor saw (nor anything else wrote since it started). Returns ``(count, kinds)``."""
    unseen = (
        SyncedRecord.connection_id == connection_id,
        SyncedRecord.deleted_at.is_(None),
        SyncedRecord.updated_at < since,
        or_(SyncedRecord.seen_at.is_(None), SyncedRecord.seen_at < since),
    )
    kinds = sorted(set(session.scalars(select(SyncedRecord.kind).where(*unseen).distinct())))
    if not kinds:
        return 0, []
    result = session.execute(
        update(SyncedRecord)
        .where(*unseen)
        .values(deleted_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount), kinds  # type: ignore[attr-defined]


_RECORD = cast(Table, SyncedRecord.__table__).c
_DELETE = (
    update(SyncedRecord)
    .where(
        SyncedRecord.connection_id == bindparam("b_connection_id"),
        SyncedRecord.kind == bindparam("b_kind"),
        SyncedRecord.external_id == bindparam("b_external_id"),
        SyncedRecord.deleted_at.is_(None),
        func.coalesce(SyncedRecord.version_at, SyncedRecord.source_updated_at, SyncedRecord.updated_at)
        <= bindparam("version", type_=UTCDateTime()),
    )
    .values(
        deleted_at=bindparam("now", type_=UTCDateTime()),
        updated_at=bindparam("now", type_=UTCDateTime()),
        version_at=bindparam("version", type_=UTCDateTime()),
    )
    .execution_options(synchronize_session=False)
)


# --- reading ------------------------------------------------------------------------------------


class RecordModel(View):
    """The contract's ``Record`` object: one synced record of a connection.

    ``updated_at`` is the stored version's time (the partner's ``updated_at``, else when TOV Plus
    received it); ``written_at`` is when the row was last written; ``deleted_at`` is null unless
    the record was deleted.
    """

    external_id: str
    kind: str
    data: dict[str, Any]
    updated_at: str
    written_at: str
    deleted_at: str | None = None


def record_view(row: SyncedRecord) -> RecordModel:
    """The contract's ``Record`` object for one stored row."""
    version = row.version_at or row.source_updated_at or row.updated_at
    return RecordModel(
        external_id=row.external_id,
        kind=row.kind,
        data=row.data,
        updated_at=format_timestamp(version),
        written_at=format_timestamp(row.updated_at),
        deleted_at=format_timestamp(row.deleted_at) if row.deleted_at else None,
    )


def list_records(
    session: Session,
    connection_id: str,
    *,
    limit: int | None,
    cursor: str | None,
    include_deleted: bool = False,
) -> Page[RecordModel]:
    """A connection's records, oldest first (the id is the cursor); deleted ones only if asked."""
    query = select(SyncedRecord).where(SyncedRecord.connection_id == connection_id)
    if not include_deleted:
        query = query.where(SyncedRecord.deleted_at.is_(None))
    query, size = paginate(
        query,
        SyncedRecord.id,
        limit=limit,
        cursor=cursor,
    )
    page = page_of(session.scalars(query).all(), size, lambda r: r.id)
    return Page([record_view(r) for r in page.items], page.next_cursor)
