"""Statement texts stay few as lists grow (the soak's memory growth, kept from coming back).

Each pooled connection caches prepared statements by their text; a query whose ``IN (…)``
list has one placeholder per value is a new text for every length. These tests grow an
occasion one connection at a time and count the distinct texts the reads sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from tests.conftest import Api

CONNECTIONS = 20
#: one text per query, whatever the list's length
SHAPES = 1


@contextmanager
def statements(api: Api) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = api.runtime.db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def in_list_shapes(seen: list[str], table: str) -> set[str]:
    return {s for s in seen if f"FROM {table}" in s and ("json_each" in s or "= ANY" in s)}


def test_the_occasion_overview_sends_a_few_statement_shapes_however_many_connections(api: Api) -> None:
    planner = api.user("planner")
    occasion = api.occasion(planner)
    with statements(api) as seen:
        for _ in range(CONNECTIONS):
            assert api.connect(planner, occasion).status_code == 201
            r = api.client.get(f"/v1/occasions/{occasion}/integrations", headers=api.auth(planner))
            assert r.status_code == 200
    assert len(r.json()["connections"]) == CONNECTIONS
    for table in ("grants", "connection_secrets", "integration_principals"):
        shapes = in_list_shapes(seen, table)
        assert 1 <= len(shapes) <= SHAPES, (table, len(shapes))
