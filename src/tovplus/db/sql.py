"""SQL helpers shared by the services."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement

T = TypeVar("T")


def padded(values: Iterable[T]) -> list[T]:
    """``values`` as a list padded to a power-of-two length by repeating its last value.

    An ``IN (…)`` list is rendered with one placeholder per value, so each length is a new
    statement text. Both drivers keep a cache of prepared statements per connection, keyed
    by that text (sqlite3 128 entries, psycopg 100), and a statement's prepared size grows
    with its list (about 120 bytes a placeholder on SQLite). Lists of every length fill each
    pooled connection's cache with one large statement per length, which ``make soak`` saw as
    steady memory growth; padded, the lengths are 1, 2, 4, 8, …, a handful of statements.
    Repeating a value changes nothing an ``IN`` matches.
    """
    out = list(values)
    if len(out) > 1:
        out.extend([out[-1]] * ((1 << (len(out) - 1).bit_length()) - len(out)))
    return out


def one_of(column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """``column IN (values)`` with the list :func:`padded` (use it for every variable list)."""
    return column.in_(padded(values))


def binary_chunks(rows: Sequence[T], largest: int = 256) -> Iterator[Sequence[T]]:
    """``rows`` in pieces whose lengths are powers of two, none longer than ``largest``.

    For multi-row ``INSERT … VALUES (…), (…)`` statements, for the reason :func:`padded` gives:
    13 rows go as 8 + 4 + 1, so a table's inserts take one of ``log2(largest) + 1`` shapes.
    """
    if largest < 1 or largest & (largest - 1):
        raise ValueError("largest must be a power of two")
    start = 0
    while start < len(rows):
        size = min(largest, 1 << ((len(rows) - start).bit_length() - 1))
        yield rows[start : start + size]
        start += size
