"""SQL helpers shared by the services: lists of ids as one parameter, inserts in fixed-size pieces.

Why: both drivers keep a cache of prepared statements per pooled connection, keyed by the
statement's text (sqlite3 128 entries, psycopg 100), and SQLite's prepared form grows with
the number of placeholders (about 120 bytes each). ``IN (?, ?, …)`` with one placeholder per
value is a new text for every list length; under ``make soak`` each pooled connection filled
its cache with one large statement per length and the process grew by about 1 KiB a request.
A list passed as *one* parameter keeps one text for every length, and multi-row inserts cut
into power-of-two pieces keep a handful (the callback writer's two inserts excepted: see
``tovplus.services.callbacks.store.insert_activity``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Boolean, ColumnElement, String, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

T = TypeVar("T")
#: What :func:`one_of` takes: a Core column or expression, or a mapped attribute (``Connection.id``).
Column = ColumnElement[Any] | QueryableAttribute[Any]


class _IdList(String):
    """A list of strings bound as one parameter: JSON text on SQLite, an array on PostgreSQL."""

    cache_ok = True

    def bind_processor(self, dialect: Any) -> Any:
        if dialect.name == "sqlite":
            return lambda value: json.dumps(list(value))
        return lambda value: list(value)


class OneOf(ColumnElement[bool]):
    """``column IN (the values of one list parameter)``; see :func:`one_of`."""

    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # a predicate: no "= 1" appended where booleans are emulated
    # SQLAlchemy declares this an instance attribute, so no ClassVar; it is read per class.
    _traverse_internals = [  # noqa: RUF012
        ("column", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: Column, values: list[str]) -> None:
        self.column = column.__clause_element__() if isinstance(column, QueryableAttribute) else column
        self.values = bindparam(None, values, type_=_IdList())


@compiles(OneOf)
def _one_of_array(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"{column} = ANY(CAST({values} AS VARCHAR[]))"


@compiles(OneOf, "sqlite")
def _one_of_json(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"{column} IN (SELECT value FROM json_each({values}))"  # noqa: S608 - compiled SQL, no values


def one_of(column: Column, values: Iterable[str]) -> ColumnElement[bool]:
    """``column IN (values)`` for a variable list of strings, as one statement text for any length
    (an index on ``column`` is used as for a plain ``IN``). Use it for every variable list."""
    return OneOf(column, list(values))


def in_list_sql(dialect: str, values: Iterable[str]) -> tuple[str, Any]:
    """:func:`one_of` for hand-written SQL: the ``IN …`` tail (or PostgreSQL's ``= ANY``) and its
    one parameter, e.g. ``cursor.execute("… WHERE c.id " + sql, [param])``."""
    if dialect == "sqlite":
        return "IN (SELECT value FROM json_each(?))", json.dumps(list(values))
    return "= ANY(CAST(%s AS VARCHAR[]))", list(values)


def binary_chunks(rows: Sequence[T], largest: int = 256) -> Iterator[Sequence[T]]:
    """``rows`` in pieces whose lengths are powers of two, none longer than ``largest``.

    For multi-row ``INSERT … VALUES (…), (…)`` statements: 13 rows go as 8 + 4 + 1, so a
    table's inserts take one of ``log2(largest) + 1`` texts instead of one per batch size.
    """
    if largest < 1 or largest & (largest - 1):
        raise ValueError("largest must be a power of two")
    start = 0
    while start < len(rows):
        size = min(largest, 1 << ((len(rows) - start).bit_length() - 1))
        yield rows[start : start + size]
        start += size
