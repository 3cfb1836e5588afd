"""The few things hand-written SQL must do exactly like the ORM.

The callback hot path and record upserts send SQL through the session's own DBAPI
connection (inside its transaction), because SQLAlchemy's per-value type processing cost
more there than the database work. These helpers write values in exactly the form the ORM
reads back (tests read them back through the ORM on both backends).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session


def db_time(dialect: str, value: datetime | None) -> Any:
    """A timezone-aware datetime as the column stores it (naive UTC text on SQLite)."""
    if value is None:
        return None
    if dialect == "sqlite":
        # SQLAlchemy's SQLite storage format ("%Y-%m-%d %H:%M:%S.%f"), written the fast way
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


def from_db_time(value: Any) -> datetime | None:
    """The reverse of :func:`db_time`: an aware UTC datetime from what the driver returned."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def db_json(value: Any) -> str:
    return json.dumps(value)


@functools.lru_cache(maxsize=4096)
def placeholders(dialect: str, columns: int, rows: int) -> str:
    """``(?, ?), (?, ?)`` (SQLite) or ``(%s, %s), …`` (psycopg)."""
    mark = "?" if dialect == "sqlite" else "%s"
    row = "(" + ", ".join([mark] * columns) + ")"
    return ", ".join([row] * rows)


#: PostgreSQL type names for :func:`row_source` (SQLite needs only the column count).
TEXT, TIME, JSON_DOC = "VARCHAR", "TIMESTAMPTZ", "JSONB"


@functools.lru_cache(maxsize=1024)
def row_source(dialect: str, types: tuple[str, ...], rows: int) -> str:
    """The rows of a multi-row ``INSERT INTO t (…) <row source>``, for :func:`row_params`.

    SQLite: ``VALUES (?, ?), (?, ?)``, one text per row count. PostgreSQL: ``SELECT * FROM
    unnest(CAST(%b AS VARCHAR[]), …)``, one array per column, so the text is the same for every
    batch size. A 32-row ``VALUES`` list was over psycopg's 4 KiB query cache and parsed
    again, by a Python regex, on every batch (40 % of the callback writer's time); this text
    is parsed once and prepared once by the server. The arrays go in binary (``%b``): psycopg's
    text form escapes each element with a regex, ~8x slower for a batch.
    """
    if dialect == "sqlite":
        return "VALUES " + placeholders(dialect, len(types), rows)
    # only type names from this module are interpolated
    return "SELECT * FROM unnest(" + ", ".join(f"CAST(%b AS {t}[])" for t in types) + ")"  # noqa: S608


def row_params(dialect: str, rows: Sequence[Sequence[Any]]) -> list[Any]:
    """The parameters for :func:`row_source`: the values row by row (SQLite), or column by column."""
    if dialect == "sqlite":
        return [value for row in rows for value in row]
    return [list(column) for column in zip(*rows, strict=True)]


def pipelined(cursor: Any) -> AbstractContextManager[Any]:
    """On psycopg, the block's statements go out without waiting for each answer (pipeline mode:
    a result is read when it is fetched, every one at the block's end); on SQLite, nothing changes.

    Only for raw statements: in the pipeline a cursor has no ``description`` until its result is
    read, which SQLAlchemy's execution would take for "no rows"."""
    pipeline = getattr(getattr(cursor, "connection", None), "pipeline", None)
    return pipeline() if callable(pipeline) else nullcontext()


def dbapi_cursor(session: Session) -> tuple[Any, str]:
    """A DBAPI cursor inside the session's transaction (flushed first), and the dialect name."""
    session.flush()
    connection = session.connection()  # begins the transaction (BEGIN IMMEDIATE on SQLite)
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    return dbapi.cursor(), connection.dialect.name
