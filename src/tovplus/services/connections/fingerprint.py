"""One text per connection, computed by the database, that changes whenever its view would.

:func:`view_fingerprint` is a column for any ``SELECT … FROM connections``: one JSON array of
every column of the connection's own row, then the four things :func:`~.views.build_views`
reads beside it — the redacted forms of its secrets, its principal's keys, its live grants and
its OAuth grant — each an array of arrays (``json_array`` and ``json_group_array`` on SQLite,
``json_build_array`` and ``json_agg`` on PostgreSQL). JSON quotes every value, so equal texts
mean equal inputs. The aggregates are ordered where the database can order them (PostgreSQL);
where it cannot (SQLite 3.40's ``json_group_array``), a different order only makes two texts
differ, never two different inputs equal. One function call per row and per related row: the
first version quoted each value separately and took twice as long (docs/benchmarks.md, "Lists").

The row's columns are listed from the table itself, so a column added later is covered without
touching this module. What the views read from other tables is listed here by hand: a view that
starts reading another table's column must add it below (``tests/connections/test_view_cache.py``
changes each input and checks the list shows it).
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import ColumnElement, String, Table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from tovplus.db.models import Connection
from tovplus.services.auth import subject_for

_CONNECTIONS = cast(Table, Connection.__table__)
_TABLE = _CONNECTIONS.name
_ROW_COLUMNS = tuple(c.name for c in _CONNECTIONS.columns)
_SUBJECT_PREFIX = subject_for("")

#: ``(FROM … WHERE …, the columns, their order or None for one row)`` of what a view reads from
#: other tables; ``{c}`` is the connection's id column.
_RELATED = (
    ("connection_secrets AS s WHERE s.connection_id = {c}", ("s.field_key", "s.redacted"), "s.field_key"),
    (
        "integration_keys AS k JOIN integration_principals AS p ON p.id = k.principal_id"
        " WHERE p.connection_id = {c}",
        ("k.id", "k.key_id", "k.last_used_at", "k.revoked_at"),
        "k.id",
    ),
    (
        "grants AS g WHERE g.subject_id = '" + _SUBJECT_PREFIX + "' || {c} AND g.revoked_at IS NULL",
        ("g.id", "g.scope_type", "g.scope_occasion_id", "g.scope_event_id", "g.action_key"),
        "g.id",
    ),
    ("oauth_grants AS o WHERE o.connection_id = {c}", ("o.status", "o.scopes", "o.expires_at"), None),
)


class ViewFingerprint(ColumnElement[str]):
    """The fingerprint column; see the module's docstring and :func:`view_fingerprint`."""

    type = String()
    inherit_cache = True
    _traverse_internals: list[Any] = []  # noqa: RUF012 - SQLAlchemy reads it per class


def view_fingerprint() -> ViewFingerprint:
    """The column: ``select(Connection.id, view_fingerprint()).where(…)``."""
    return ViewFingerprint()


def _text(array: str, aggregate: str) -> str:
    """The fingerprint's SQL: ``array`` makes a JSON array of its arguments, ``aggregate``
    (``"{expr}"``, ``"{order}"``) one of a related table's rows."""
    conn = f"{_TABLE}.id"
    parts = [f"{_TABLE}.{c}" for c in _ROW_COLUMNS]
    for source, columns, order in _RELATED:
        expr = f"{array}({', '.join(columns)})"
        if order is not None:
            expr = aggregate.format(expr=expr, order=order)
        parts.append(f"(SELECT {expr} FROM {source.format(c=conn)})")  # noqa: S608 - our own names
    return f"{array}({', '.join(parts)})"


_SQLITE = _text("json_array", "json_group_array({expr})")
#: As text: psycopg would read a ``json`` value as Python lists, which cannot be compared as keys.
_POSTGRESQL = f"CAST({_text('json_build_array', 'json_agg({expr} ORDER BY {order})')} AS TEXT)"


@compiles(ViewFingerprint)
def _postgresql(element: ViewFingerprint, compiler: SQLCompiler, **kw: Any) -> str:
    return _POSTGRESQL


@compiles(ViewFingerprint, "sqlite")
def _sqlite(element: ViewFingerprint, compiler: SQLCompiler, **kw: Any) -> str:
    return _SQLITE
