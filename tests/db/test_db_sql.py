"""Variable lists as one parameter, and inserts in power-of-two pieces (``tovplus.db.sql``)."""

from __future__ import annotations

import pytest
from sqlalchemy import column, func, insert, select, table
from sqlalchemy.dialects import postgresql, sqlite

from tovplus.db.ids import new_id
from tovplus.db.models import Occasion, User
from tovplus.db.sql import binary_chunks, in_list_sql, one_of
from tovplus.db.types import utcnow
from tovplus.runtime import Runtime

THINGS = table("things", column("id"))


@pytest.mark.no_db
@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "postgresql"])
def test_one_of_is_one_statement_text_for_every_length(dialect) -> None:
    texts = {
        str(
            select(THINGS.c.id)
            .where(one_of(THINGS.c.id, [str(i) for i in range(n)]))
            .compile(dialect=dialect)
        )
        for n in range(0, 300)
    }
    assert len(texts) == 1, texts


@pytest.mark.no_db
def test_in_list_sql_for_hand_written_sql() -> None:
    assert in_list_sql("sqlite", ["a", "b"]) == ("IN (SELECT value FROM json_each(?))", '["a", "b"]')
    assert in_list_sql("postgresql", ("a", "b")) == ("= ANY(CAST(%s AS VARCHAR[]))", ["a", "b"])


@pytest.mark.parametrize("wanted", [0, 1, 2, 7, 300])
def test_one_of_finds_exactly_the_listed_rows(runtime: Runtime, wanted: int) -> None:
    with runtime.db.write() as session:
        user_id = new_id("usr")
        session.execute(insert(User).values(id=user_id, email=f"{user_id}@example.com", role="planner"))
        ids = [new_id("occ") for _ in range(310)]
        session.execute(
            insert(Occasion),
            [{"id": i, "name": "O", "starts_on": utcnow().date(), "created_by": user_id} for i in ids],
        )
    listed = [*ids[:wanted], "occ_missing", 'it\'s "quoted", [json]']
    with runtime.db.read() as session:
        found = session.scalars(select(Occasion.id).where(one_of(Occasion.id, listed))).all()
        counted = session.scalar(
            select(func.count()).where(~one_of(Occasion.id, listed)).select_from(Occasion)
        )
    assert sorted(found) == sorted(ids[:wanted])
    assert counted == 310 - wanted


def test_one_of_uses_the_index_on_sqlite(runtime: Runtime) -> None:
    if not runtime.db.is_sqlite:
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    query = select(Occasion.name).where(one_of(Occasion.id, ["a", "b"]))
    with runtime.db.read() as session:
        sql = "EXPLAIN QUERY PLAN " + str(query.compile(dialect=sqlite.dialect()))
        steps = [row[3] for row in session.connection().exec_driver_sql(sql, ('["a", "b"]',))]
    assert any(s.startswith("SEARCH occasions") for s in steps), steps
    assert not [s for s in steps if s.startswith("SCAN occasions")], steps


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("length", "largest", "sizes"),
    [
        (0, 256, []),
        (1, 256, [1]),
        (13, 256, [8, 4, 1]),
        (256, 256, [256]),
        (1000, 256, [256, 256, 256, 128, 64, 32, 8]),
        (7, 2, [2, 2, 2, 1]),
    ],
)
def test_binary_chunks(length: int, largest: int, sizes: list[int]) -> None:
    rows = list(range(length))
    pieces = list(binary_chunks(rows, largest))
    assert [len(p) for p in pieces] == sizes
    assert [r for p in pieces for r in p] == rows  # every row once, in order


@pytest.mark.no_db
def test_binary_chunks_wants_a_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        list(binary_chunks([1, 2, 3], 3))
