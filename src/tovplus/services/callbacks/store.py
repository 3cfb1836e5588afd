"""The callback batch's SQL: load the targets, claim delivery ids, write records and activity.

Everything here runs on the batch's own DBAPI cursor inside its write transaction
(:mod:`tovplus.db.raw`): on this hot path SQLAlchemy's per-value processing cost more than
the database work.

Idempotency holds across processes: on PostgreSQL the delivery row is inserted with
``ON CONFLICT DO NOTHING``; a concurrent copy in another transaction waits on the row and
then finds it taken, so it reports ``duplicate`` and writes nothing. On SQLite the batch's
``BEGIN IMMEDIATE`` already holds the one write lock.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tovplus.db.ids import new_ids
from tovplus.db.raw import (
    JSON_DOC,
    TEXT,
    TIME,
    db_json,
    db_time,
    from_db_time,
    pipelined,
    placeholders,
    row_params,
    row_source,
)
from tovplus.db.sql import in_list_sql
from tovplus.errors import CallbackRejected, Conflict, TovPlusError
from tovplus.integrations.contract import RecordUpsert
from tovplus.integrations.redaction import redact_details
from tovplus.runtime.keyring import Sealed
from tovplus.services.auth import subject_for
from tovplus.services.callbacks.batch import Accepted, Key, Target, Tx
from tovplus.services.callbacks.inbound import CallbackOutcome, InboundCallback
from tovplus.services.records import collapse, upsert_rows

#: One outcome (or error) per job of the batch; ``None`` until a step decides.
Results = list[CallbackOutcome | TovPlusError | None]
#: A callback the adapter refused that carried a delivery id: (job index, job, the refusal).
RefusedWithId = tuple[int, InboundCallback, CallbackRejected]

_CLAIM_TYPES = (TEXT, TEXT, TEXT, TIME)  # connection_id, delivery_id, activity_id, received_at
_ACTIVITY_TYPES = (TEXT, TIME, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, JSON_DOC)

_LOAD_SQL = (
    "SELECT c.id, c.integration_key, c.state, c.occasion_id, c.config,"
    " k.key_id, k.secret_hash, k.last_used_at,"
    " k.callback_secret_key_id, k.callback_secret_nonce, k.callback_secret_ciphertext,"
    " c.suspended_at"
    " FROM connections c"
    " LEFT JOIN integration_principals p ON p.connection_id = c.id AND p.revoked_at IS NULL"
    " LEFT JOIN integration_keys k ON k.principal_id = p.id AND k.revoked_at IS NULL"
    " WHERE c.id "
)


def load_targets(tx: Tx, ids: list[str]) -> dict[str, Target]:
    """The connections and their live keys (with their sealed signing secrets), in one query."""
    in_list, param = in_list_sql(tx.dialect, ids)
    with pipelined(tx.cursor):  # on PostgreSQL the transaction's BEGIN goes with it: one round trip
        tx.cursor.execute(_LOAD_SQL + in_list, [param])
        rows = tx.cursor.fetchall()
    targets: dict[str, Target] = {}
    for row in rows:
        conn_id, integration_key, state, occasion_id, config, key_id, secret_hash, last_used = row[:8]
        target = targets.get(conn_id)
        if target is None:
            if isinstance(config, str | bytes):
                config = json.loads(config)
            target = targets[conn_id] = Target(
                conn_id, integration_key, state, occasion_id, config if isinstance(config, dict) else {}
            )
            target.suspended = row[11] is not None
        if key_id is not None:
            master_id, nonce, ciphertext = row[8:11]
            signing = Sealed(master_id, bytes(nonce), bytes(ciphertext)) if master_id is not None else None
            target.keys.append(Key(key_id, secret_hash, from_db_time(last_used), signing))
    return targets


def store_accepted(
    tx: Tx, accepted: list[Accepted], refused_with_id: list[RefusedWithId], results: Results, now: datetime
) -> None:
    """Claim delivery ids, then write records and activity for the callbacks that won."""
    winners, claims, repeats = _assign_activity_ids(accepted)
    stamp = db_time(tx.dialect, now)
    # Which delivery ids are taken already (by earlier batches or other processes)? On
    # PostgreSQL the claim's ON CONFLICT finds those of the accepted callbacks and looks up only
    # them, which spares the batch a round trip in the usual case (no repeats).
    lookup = [(job.connection_id, job.effective_delivery_id or "") for _, job, _ in refused_with_id]
    if tx.dialect == "sqlite":
        lookup += [(a.target.connection_id, a.delivery_id or "") for a in claims]
    existing = _existing_deliveries(tx.cursor, tx.dialect, lookup) if lookup else {}
    won, lost = _claim_deliveries(tx, claims, existing, stamp)
    winners += won
    for a in lost:
        first = existing.get((a.target.connection_id, a.delivery_id or ""))
        results[a.index] = (
            CallbackOutcome("duplicate", first)
            if first is not None
            else Conflict("The delivery is being processed; retry it.", code="delivery_in_progress")
        )
    for index, job, _exc in refused_with_id:
        first = existing.get((job.connection_id, job.effective_delivery_id or ""))
        if first is not None:  # a repeat of an accepted delivery stays a duplicate
            results[index] = CallbackOutcome("duplicate", first)
    _write_winners(tx, winners, stamp, results)
    for item, held in repeats:
        outcome = results[held.index]
        results[item.index] = (
            CallbackOutcome("duplicate", outcome.activity_id)
            if isinstance(outcome, CallbackOutcome)
            else outcome
        )


def _assign_activity_ids(
    accepted: list[Accepted],
) -> tuple[list[Accepted], list[Accepted], list[tuple[Accepted, Accepted]]]:
    """Give each callback its activity id; split them into those without a delivery id (they
    win at once), the first of each delivery id (to claim), and repeats within the batch."""
    first_of: dict[tuple[str, str], Accepted] = {}
    repeats: list[tuple[Accepted, Accepted]] = []
    claims: list[Accepted] = []
    winners: list[Accepted] = []
    for item, activity_id in zip(accepted, new_ids("act", len(accepted)), strict=True):
        item.activity_id = activity_id
        if item.delivery_id is None:
            winners.append(item)
            continue
        key = (item.target.connection_id, item.delivery_id)
        held = first_of.get(key)
        if held is None:
            first_of[key] = item
            claims.append(item)
        else:
            repeats.append((item, held))  # the same delivery twice in one batch
    return winners, claims, repeats


def _claim_deliveries(
    tx: Tx, claims: list[Accepted], existing: dict[tuple[str, str], str], stamp: Any
) -> tuple[list[Accepted], list[Accepted]]:
    """Insert the delivery rows not in ``existing``: (the callbacks that won them, those that lost).

    On PostgreSQL a race lost to another process adds that process's rows to ``existing``.
    """
    cursor, dialect = tx.cursor, tx.dialect
    fresh = [a for a in claims if (a.target.connection_id, a.delivery_id) not in existing]
    lost = [a for a in claims if (a.target.connection_id, a.delivery_id) in existing]
    if not fresh:
        return [], lost
    fresh.sort(key=lambda a: (a.target.connection_id, a.delivery_id or ""))  # stable lock order
    # one statement per batch, like the activity insert (see insert_activity)
    params = row_params(
        dialect, [(a.target.connection_id, a.delivery_id, a.activity_id, stamp) for a in fresh]
    )
    sql = (
        "INSERT INTO callback_deliveries (connection_id, delivery_id, activity_id, received_at) "
        + row_source(dialect, _CLAIM_TYPES, len(fresh))
    )  # only placeholders are interpolated
    if dialect == "sqlite":
        # BEGIN IMMEDIATE holds the one write lock: nobody can have inserted them since
        cursor.execute(sql, params)
        return fresh, lost
    # another process may be inserting the same id right now: the row decides
    cursor.execute(
        sql + " ON CONFLICT (connection_id, delivery_id) DO NOTHING RETURNING connection_id, delivery_id",
        params,
    )
    claimed = {(r[0], r[1]) for r in cursor.fetchall()}
    raced = [a for a in fresh if (a.target.connection_id, a.delivery_id) not in claimed]
    won = [a for a in fresh if (a.target.connection_id, a.delivery_id) in claimed]
    if raced:
        keys = [(a.target.connection_id, a.delivery_id or "") for a in raced]
        existing.update(_existing_deliveries(cursor, dialect, keys))
        lost += raced
    return won, lost


def _write_winners(tx: Tx, winners: list[Accepted], stamp: Any, results: Results) -> None:
    """The records and the ``callback.received`` entries of the callbacks that won; their outcomes."""
    by_connection: dict[str, list[RecordUpsert]] = {}
    activity_rows: list[tuple[Any, ...]] = []
    for a in winners:
        target = a.target
        by_connection.setdefault(target.connection_id, []).extend(a.result.records)
        details = dict(a.result.details)
        if a.delivery_id is not None:
            details["delivery_id"] = a.delivery_id
        redacted = redact_details({"summary": a.result.summary or "Callback received", "details": details})
        activity_rows.append(
            (
                a.activity_id,
                stamp,
                target.occasion_id,
                target.connection_id,
                target.integration_key,
                "callback.received",
                subject_for(target.connection_id),
                str(redacted["summary"])[:500],
                db_json(redacted["details"]),
            )
        )
        results[a.index] = CallbackOutcome("accepted", a.activity_id)
    # the batch's last writes: nothing reads their results, so they go with the commit
    if by_connection:
        rows = [(c, collapse(by_connection[c])) for c in sorted(by_connection)]
        upsert_rows(tx.tail, tx.dialect, rows, count=False)
    if activity_rows:
        insert_activity(tx.tail, tx.dialect, activity_rows)


def insert_activity(cursor: Any, dialect: str, rows: list[tuple[Any, ...]]) -> None:
    """One multi-row INSERT (one statement step for the whole batch).

    Not cut into :func:`~tovplus.db.sql.binary_chunks` as other inserts are: on this hot path the
    extra statements cost about a fifth of the callback throughput (``make bench``). The texts stay
    bounded by the writer's ``max_batch``, and in practice by the number of concurrent callbacks.
    """
    sql = (
        "INSERT INTO activity"
        " (id, occurred_at, occasion_id, connection_id, integration_key, kind, actor, summary, details) "
        + row_source(dialect, _ACTIVITY_TYPES, len(rows))  # only placeholders
    )
    cursor.execute(sql, row_params(dialect, rows))


def _existing_deliveries(
    cursor: Any, dialect: str, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """``{(connection_id, delivery_id): activity_id}`` for the keys already stored.

    One ``connection_id = ? AND delivery_id IN (<one list>)`` query per connection: that form
    walks the primary key, where a row-value ``(a, b) IN (…)`` makes SQLite scan the whole table.
    """
    by_connection: dict[str, set[str]] = {}
    for connection_id, delivery_id in keys:
        by_connection.setdefault(connection_id, set()).add(delivery_id)
    found: dict[tuple[str, str], str] = {}
    for connection_id in sorted(by_connection):
        in_list, param = in_list_sql(dialect, sorted(by_connection[connection_id]))
        cursor.execute(existing_deliveries_sql(dialect, in_list), [connection_id, param])
        for delivery_id, activity_id in cursor.fetchall():
            found[(connection_id, delivery_id)] = activity_id
    return found


def existing_deliveries_sql(dialect: str, in_list: str) -> str:
    """The lookup, with ``in_list`` from :func:`~tovplus.db.sql.in_list_sql` (no values in the text)."""
    return (
        "SELECT delivery_id, activity_id FROM callback_deliveries"  # noqa: S608
        " WHERE connection_id = " + placeholders(dialect, 1, 1) + " AND delivery_id " + in_list
    )
