"""PostgreSQL: a batch's writes in one round trip (the hot path's one trick there, kept here).

On a two-core machine every round trip to PostgreSQL is a context switch to its backend and
back; a batch used to make one per statement (claim the delivery ids, one or two record
upserts, the activity insert). Here those statements are interpolated client-side
(:meth:`psycopg.ClientCursor.mogrify`, the driver's own quoting) and sent as one simple query,
preceded by a savepoint:

    SAVEPOINT …; INSERT INTO callback_deliveries … ON CONFLICT DO NOTHING RETURNING …;
    INSERT INTO synced_records …; INSERT INTO activity …

The records and activity assume every claim won, which is the usual case (a partner repeats a
delivery rarely). When the claim's ``RETURNING`` shows that one did not (a repeat of an earlier
batch, or another process racing for the same id), the batch rolls back to the savepoint and
:mod:`.store` takes its ordinary path, one statement at a time, in the same transaction.
"""

from __future__ import annotations

from typing import Any

import psycopg

from tovplus.services.callbacks.batch import Accepted, Tx

_SAVEPOINT = "callback_claims"


class _Statements:
    """A stand-in cursor that keeps each statement, interpolated, instead of running it."""

    def __init__(self, client: psycopg.ClientCursor[Any]) -> None:
        self._client = client
        self.texts: list[str] = []

    def execute(self, sql: str, params: Any = None) -> None:
        self.texts.append(self._client.mogrify(sql, params) if params else sql)


def write_in_one_trip(
    tx: Tx, claims: list[Accepted], claim_sql: str, claim_params: list[Any], write: Any
) -> bool:
    """Send the claim and ``write(tx)`` (the records and activity of every claim and winner) as one
    query; true when every claim won. False: the batch is back at the savepoint, nothing written."""
    cursor = tx.cursor
    client = psycopg.ClientCursor(cursor.connection)
    try:
        statements = _Statements(client)
        statements.execute(f"SAVEPOINT {_SAVEPOINT}")
        statements.execute(claim_sql, claim_params)
        write(Tx(tx.session, statements, tx.dialect))
        cursor.execute("; ".join(statements.texts))
        cursor.nextset()  # past the savepoint's result, to the claim's rows
        claimed = len(cursor.fetchall())
    finally:
        client.close()
    if claimed == len(claims):
        return True
    cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
    return False
