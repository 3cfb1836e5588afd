"""One batch mixing new and repeated deliveries (on PostgreSQL: the one-round-trip write and its
fall-back to the statement-by-statement path)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.callbacks.test_callbacks import Conn, count, make_conn, order
from tests.conftest import Api
from tovplus.db.models import Activity, CallbackDelivery, SyncedRecord
from tovplus.runtime import Runtime
from tovplus.services.callbacks import CallbackOutcome, CallbackService, InboundCallback


def _job(conn: Conn, delivery: str, order_id: str) -> InboundCallback:
    body = json.dumps(order(order_id)).encode()
    return InboundCallback(
        integration_key="printing_partner",
        connection_id=conn.id,
        body=body,
        payload=json.loads(body),
        secret=conn.key,
        delivery_id=delivery,
    )


def test_a_batch_with_new_and_repeated_deliveries_writes_only_the_new_ones(api: Api, runtime: Runtime):
    conn = make_conn(api)
    service = CallbackService(runtime)
    try:
        [first] = service.commit_batch([_job(conn, "d-1", "first")])
        assert isinstance(first, CallbackOutcome)
        assert first.status == "accepted"
        outcomes = service.commit_batch(
            [_job(conn, "d-2", "second"), _job(conn, "d-1", "repeat"), _job(conn, "d-3", "third")]
        )
    finally:
        service.close()
    assert [o.status for o in outcomes if isinstance(o, CallbackOutcome)] == [
        "accepted",
        "duplicate",
        "accepted",
    ]
    assert outcomes[1] == CallbackOutcome("duplicate", first.activity_id)
    assert count(runtime, CallbackDelivery) == 3
    with runtime.db.read() as s:
        received = set(s.scalars(select(Activity.id).where(Activity.kind == "callback.received")))
        orders = sorted(s.scalars(select(SyncedRecord.external_id)))
    assert received == {first.activity_id, outcomes[0].activity_id, outcomes[2].activity_id}  # type: ignore[union-attr]
    assert orders == ["first", "second", "third"], "the repeat must not have written its record"


def test_a_batch_of_only_new_deliveries_is_written_whole(api: Api, runtime: Runtime):
    conn = make_conn(api)
    service = CallbackService(runtime)
    try:
        outcomes = service.commit_batch([_job(conn, f"n-{i}", f"s{i}") for i in range(5)])
    finally:
        service.close()
    assert [o.status for o in outcomes if isinstance(o, CallbackOutcome)] == ["accepted"] * 5
    assert count(runtime, CallbackDelivery) == 5
    assert count(runtime, Activity, kind="callback.received") == 5


def test_literals_written_into_the_one_trip_query_read_back_exactly(runtime: Runtime):
    if runtime.db.is_sqlite:
        pytest.skip("PostgreSQL only")
    from datetime import UTC, datetime

    from tovplus.services.callbacks.one_trip import _Statements

    values = ["it's", "back\\slash", "E'x'", "\u00e9\u2603 \U0001f600", "%s", "", None, 42]
    stamp = datetime(2026, 12, 1, 19, 40, 0, 123456, tzinfo=UTC)
    with runtime.db.write() as session:
        raw = session.connection().connection.dbapi_connection
        assert raw is not None
        statements = _Statements(raw.pgconn)  # type: ignore[attr-defined]
        statements.execute("SELECT " + ", ".join(["%s"] * (len(values) + 1)), [*values, stamp])
        cursor = raw.cursor()
        cursor.execute(statements.texts[0])
        assert list(cursor.fetchone()) == [*values, stamp]
        with pytest.raises(TypeError):
            statements.execute("SELECT %s", [1.5])
        with pytest.raises(ValueError, match="placeholders"):
            statements.execute("SELECT %s, %s", ["one"])
