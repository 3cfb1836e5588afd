"""PostgreSQL: a batch's writes in one round trip (the hot path's one trick there, kept here).

On a two-core machine every round trip to PostgreSQL is a context switch to its backend and
back, and the writer thread then waits for the GIL, which the event loop usually holds; a batch
used to make one per statement (claim the delivery ids, one or two record upserts, the activity
insert). Here those statements are sent as one simple query, preceded by a savepoint:

    SAVEPOINT …; INSERT INTO callback_deliveries … ON CONFLICT DO NOTHING RETURNING …;
    INSERT INTO synced_records …; INSERT INTO activity …

A simple query carries no parameters, so the values are written into the text as literals, each
quoted by libpq itself (``PQescapeLiteral``, which knows the server's string settings):
psycopg's ``ClientCursor.mogrify`` does the same but cost ~40 µs per callback in Python. Only
the types these statements carry are accepted (text, timestamps, integers, NULL); anything else
raises, and the batch fails rather than being sent wrongly quoted.

The records and activity assume every claim won, which is the usual case (a partner repeats a
delivery rarely). When the claim's ``RETURNING`` shows that one did not (a repeat of an earlier
batch, or another process racing for the same id), the batch rolls back to the savepoint and
:mod:`.store` takes its ordinary path, one statement at a time, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from psycopg import pq

from tovplus.services.callbacks.batch import Accepted, Tx

_SAVEPOINT = "callback_claims"


class _Statements:
    """A stand-in cursor that keeps each statement, its values written in as literals."""

    def __init__(self, pgconn: Any) -> None:
        self._escape: Callable[[bytes], bytes] = pq.Escaping(pgconn).escape_literal
        self.texts: list[str] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        pieces = sql.split("%s")
        if len(pieces) != len(params) + 1:
            raise ValueError(f"{len(pieces) - 1} placeholders for {len(params)} values")
        out = [pieces[0]]
        for value, piece in zip(params, pieces[1:], strict=True):
            out.append(self._literal(value))
            out.append(piece)
        self.texts.append("".join(out))

    def _literal(self, value: Any) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, str):
            return str(self._escape(value.encode()).decode())
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("a naive timestamp")
            return "'" + value.isoformat(" ") + "'::timestamptz"
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise TypeError(f"no literal for {type(value).__name__}")


def write_in_one_trip(
    tx: Tx, claims: list[Accepted], claim_sql: str, claim_params: list[Any], write: Callable[[Tx], None]
) -> bool:
    """Send the claim and ``write(tx)`` (the records and activity of every claim and winner) as one
    query; true when every claim won. False: the batch is back at the savepoint, nothing written."""
    cursor = tx.cursor
    statements = _Statements(cursor.connection.pgconn)
    statements.execute(f"SAVEPOINT {_SAVEPOINT}")
    statements.execute(claim_sql, claim_params)
    write(Tx(tx.session, statements, tx.dialect))
    cursor.execute("; ".join(statements.texts))
    cursor.nextset()  # past the savepoint's result, to the claim's rows
    claimed = len(cursor.fetchall())
    if claimed == len(claims):
        return True
    cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
    return False
