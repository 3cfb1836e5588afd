"""One batch mixing new deliveries with a repeat of an earlier batch's: only the new ones write."""

from __future__ import annotations

from sqlalchemy import select

from tests.callbacks.test_callbacks import Conn, count, inbound, make_conn, order
from tests.conftest import Api
from tovplus.db.models import Activity, CallbackDelivery, SyncedRecord
from tovplus.runtime import Runtime
from tovplus.services.callbacks import CallbackOutcome, CallbackService, InboundCallback


def _job(conn: Conn, delivery: str, order_id: str) -> InboundCallback:
    return inbound(conn, delivery, order(order_id))


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
