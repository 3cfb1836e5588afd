"""The few things hand-written SQL must do exactly like the ORM.

The callback hot path and record upserts send SQL through the session's own DBAPI
connection (inside its transaction), because SQLAlchemy's per-value type processing cost
more there than the database work. These helpers write values in exactly the form the ORM
reads back (tests read them back through the ORM on both backends).
"""

from __future__ import annotations

import functools
import json
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
def placeholders(dialect: str, columns: int, rows: int, casts: tuple[tuple[int, str], ...] = ()) -> str:
    """``(?, ?), (?, ?)`` (SQLite) or ``(%s, %s), …`` (psycopg), with ``CAST`` per column on PostgreSQL."""
    mark = "?" if dialect == "sqlite" else "%s"
    cells = [mark] * columns
    for index, type_name in casts:
        if dialect == "postgresql":
            cells[index] = f"CAST({mark} AS {type_name})"
    row = "(" + ", ".join(cells) + ")"
    return ", ".join([row] * rows)


def dbapi_cursor(session: Session) -> tuple[Any, str]:
    """A DBAPI cursor inside the session's transaction (flushed first), and the dialect name."""
    session.flush()
    connection = session.connection()  # begins the transaction (BEGIN IMMEDIATE on SQLite)
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    return dbapi.cursor(), connection.dialect.name
