"""``row_source`` / ``row_params``: multi-row inserts the ORM reads back alike, one text on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from tovplus.db.ids import new_ids
from tovplus.db.models import Activity
from tovplus.db.raw import db_json, db_time, row_params, row_source
from tovplus.runtime import Runtime
from tovplus.services.callbacks.store import insert_activity

WHEN = datetime(2026, 11, 25, 19, 40, 0, 123456, tzinfo=UTC)


def _rows(dialect: str, count: int) -> list[tuple[Any, ...]]:
    rows = []
    for n, activity_id in enumerate(new_ids("act", count)):
        rows.append(
            (
                activity_id,
                db_time(dialect, WHEN + timedelta(seconds=n)),
                None,  # a column that is NULL in every row
                f"con_{n}" if n % 2 else None,
                "printing_partner",
                "callback.received",
                "connection:x",
                f"Naïve ☃ {n} 'quoted' \"double\" {{braces}} \\ back",
                db_json({"n": n, "nested": {"list": [1, None, "é"]}, "empty": {}}),
            )
        )
    return rows


def test_rows_written_in_one_statement_read_back_through_the_orm(runtime: Runtime) -> None:
    with runtime.db.write() as session:
        dialect = session.get_bind().dialect.name
        rows = _rows(dialect, 7)
        cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        insert_activity(cursor, dialect, rows)
    with runtime.db.read() as session:
        stored = session.scalars(select(Activity).order_by(Activity.id)).all()
    assert [a.id for a in stored] == [r[0] for r in rows]
    for n, activity in enumerate(stored):
        assert activity.occurred_at == WHEN + timedelta(seconds=n)
        assert activity.occasion_id is None
        assert activity.connection_id == (f"con_{n}" if n % 2 else None)
        assert activity.summary == rows[n][7]
        assert activity.details == {"n": n, "nested": {"list": [1, None, "é"]}, "empty": {}}
        assert activity.repeat_count == 1  # the server default still applies


def test_postgresql_sends_one_text_for_every_batch_size() -> None:
    types = ("VARCHAR", "TIMESTAMPTZ", "JSONB")
    texts = {row_source("postgresql", types, rows) for rows in (1, 2, 17, 32, 500)}
    assert len(texts) == 1
    assert texts.pop().count("%b") == len(types)
    assert len({row_source("sqlite", types, rows) for rows in (1, 2, 17)}) == 3
    rows = [("a", 1, "x"), ("b", 2, None)]
    assert row_params("postgresql", rows) == [["a", "b"], [1, 2], ["x", None]]
    assert row_params("sqlite", rows) == ["a", 1, "x", "b", 2, None]
