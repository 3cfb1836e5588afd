"""Batched deliveries: one claim for many, one outcome transaction for many, and every
single-delivery guarantee kept per row (over real HTTP to a loopback receiver)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from huey import MemoryHuey
from sqlalchemy import event, update

from tests.conftest import Api
from tests.webhooks.test_webhooks_delivery import (
    Receiver,
    add_endpoint,
    attempts,
    delivery,
    emit,
    endpoint,
    verify,
)
from tovplus.db.models import WebhookDelivery
from tovplus.db.types import utcnow
from tovplus.runtime import Runtime, trace
from tovplus.services import webhooks
from tovplus.worker import DELIVER_MANY_TASK, DELIVER_TASK, HueyDispatcher, register_tasks


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def emit_many(runtime: Runtime, occasion_id: str, count: int) -> list[str]:
    return [i for _ in range(count) for i in emit(runtime, occasion_id)]


class Statements:
    """Counts the SQL statements run on the database, by their first words."""

    def __init__(self, runtime: Runtime) -> None:
        self.seen: list[str] = []
        self.engine = runtime.db.engine
        event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.seen.append(" ".join(statement.split()[:3]).lower())

    def count(self, prefix: str) -> int:
        return sum(1 for s in self.seen if s.startswith(prefix))

    def stop(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def test_one_claim_takes_many_and_skips_what_is_not_due(api: Api, runtime: Runtime, receiver: Receiver):
    s = add_endpoint(api, receiver.url)
    ids = emit_many(runtime, s.occasion_id, 12)
    later, leased = ids[10], ids[11]
    with runtime.db.write() as session:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == later)
            .values(next_attempt_at=utcnow() + timedelta(hours=1))
        )
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == leased)
            .values(
                state="delivering",
                attempt=1,
                lease_owner="other",
                lease_expires_at=utcnow() + timedelta(minutes=1),
            )
        )
    given = [*reversed(ids), ids[0]]  # an order of our own, and one id twice
    statements = Statements(runtime)
    try:
        claims = webhooks.claim_deliveries(runtime, given, "w1")
    finally:
        statements.stop()

    assert [c.delivery_id for c in claims] == list(reversed(ids[:10]))  # the order given, each once
    assert statements.count("update webhook_deliveries") == 1
    assert {c.attempt for c in claims} == {1}
    for delivery_id in ids[:10]:
        row = delivery(runtime, delivery_id)
        assert (row.state, row.lease_owner, row.attempt) == ("delivering", "w1", 1)
    assert delivery(runtime, later).state == "pending"
    assert delivery(runtime, leased).lease_owner == "other"
    assert webhooks.claim_deliveries(runtime, given, "w2") == []  # all taken now

    outcomes = [webhooks.send(runtime, c) for c in claims]
    statements = Statements(runtime)
    try:
        labels = webhooks.record_outcomes(runtime, list(zip(claims, outcomes, strict=True)), "w1")
    finally:
        statements.stop()
    assert labels == ["delivered"] * 10
    assert statements.count("update webhook_deliveries") == 1  # every success in one statement
    assert sorted(r.headers["webhook-id"] for r in receiver.received) == sorted(ids[:10])
    assert all(verify(s.secret, r.headers, r.body) for r in receiver.received)
    for delivery_id in ids[:10]:
        row = delivery(runtime, delivery_id)
        assert (row.state, row.lease_owner, row.lease_expires_at) == ("delivered", None, None)
        assert [(a.status_code, a.succeeded) for a in attempts(runtime, delivery_id)] == [(200, True)]


def test_an_outcome_batch_where_one_row_was_taken_over(api: Api, runtime: Runtime, receiver: Receiver):
    s = add_endpoint(api, receiver.url)
    first, taken, same_worker = emit_many(runtime, s.occasion_id, 3)
    claims = webhooks.claim_deliveries(runtime, [first, taken, same_worker], "w1")
    outcomes = [webhooks.send(runtime, c) for c in claims]
    with runtime.db.write() as session:  # w1 was too slow: two leases ran out
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_([taken, same_worker]))
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    [by_w2] = webhooks.claim_deliveries(runtime, [taken], "w2")
    [again] = webhooks.claim_deliveries(runtime, [same_worker], "w1")  # w1 itself, a new attempt
    assert (by_w2.attempt, again.attempt) == (2, 2)

    labels = webhooks.record_outcomes(runtime, list(zip(claims, outcomes, strict=True)), "w1")

    assert labels == ["delivered", "lease_lost", "lease_lost"]
    assert delivery(runtime, first).state == "delivered"
    for delivery_id, owner in ((taken, "w2"), (same_worker, "w1")):
        row = delivery(runtime, delivery_id)
        assert (row.state, row.lease_owner, row.attempt) == ("delivering", owner, 2)  # the new holder decides
        assert len(attempts(runtime, delivery_id)) == 1  # the first attempt happened: recorded once
    [late] = webhooks.record_outcomes(runtime, [(by_w2, webhooks.send(runtime, by_w2))], "w2")
    assert late == "delivered"
    assert [a.succeeded for a in attempts(runtime, taken)] == [True, True]
    assert [r.headers["webhook-id"] for r in receiver.received].count(taken) == 2  # same webhook-id


def test_the_reaper_takes_back_a_batch_a_dead_worker_claimed(api: Api, runtime: Runtime, receiver: Receiver):
    s = add_endpoint(api, receiver.url)
    ids = emit_many(runtime, s.occasion_id, 5)
    assert len(webhooks.claim_deliveries(runtime, ids, "dead")) == 5  # then the worker died

    assert set(ids).isdisjoint(webhooks.requeue_due_deliveries(runtime, utcnow()))  # leases still live
    assert webhooks.deliver_many(runtime, ids, worker_id="w2") == []
    due = webhooks.requeue_due_deliveries(
        runtime, utcnow() + timedelta(seconds=runtime.settings.lease_seconds + 1)
    )
    assert set(ids) <= set(due)

    with runtime.db.write() as session:  # time passes
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids))
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
    done = webhooks.deliver_many(runtime, webhooks.requeue_due_deliveries(runtime, utcnow()), worker_id="w2")

    assert sorted(d.delivery_id for d in done) == sorted(ids)
    assert {d.label for d in done} == {"delivered"}
    assert sorted(r.headers["webhook-id"] for r in receiver.received) == sorted(ids)
    for delivery_id in ids:
        row = delivery(runtime, delivery_id)
        assert (row.state, row.attempt, row.lease_owner) == ("delivered", 2, None)


def test_two_workers_draining_the_same_ids_send_each_once(api: Api, runtime: Runtime, receiver: Receiver):
    s = add_endpoint(api, receiver.url)
    receiver.delay = 0.02
    ids = emit_many(runtime, s.occasion_id, 30)
    barrier = threading.Barrier(3)
    results: dict[str, list[webhooks.Delivered]] = {}
    errors: list[BaseException] = []

    def drain(worker_id: str, order: list[str]) -> None:
        try:
            barrier.wait()
            results[worker_id] = webhooks.deliver_many(runtime, order, worker_id=worker_id, concurrency=3)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=drain, args=("w1", ids)),
        threading.Thread(target=drain, args=("w2", list(reversed(ids)))),
        threading.Thread(target=drain, args=("w3", ids[10:] + ids[:10])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    delivered = [d.delivery_id for r in results.values() for d in r]
    assert sorted(delivered) == sorted(ids)  # each claimed by exactly one worker
    assert sorted(r.headers["webhook-id"] for r in receiver.received) == sorted(ids)
    for delivery_id in ids:
        assert len(attempts(runtime, delivery_id)) == 1
        assert delivery(runtime, delivery_id).state == "delivered"


def test_a_batch_with_failures_schedules_retries_and_marks_the_endpoint(
    api: Api, runtime: Runtime, receiver: Receiver
):
    s = add_endpoint(api, receiver.url)
    receiver.script = [(500, {}), (503, {})]
    ids = emit_many(runtime, s.occasion_id, 4)

    done = webhooks.deliver_many(runtime, ids, worker_id="w1")

    labels = sorted(d.label for d in done)
    assert labels == ["delivered", "delivered", "retry_scheduled", "retry_scheduled"]
    retried = [d.delivery_id for d in done if d.label == "retry_scheduled"]
    for delivery_id in retried:
        row = delivery(runtime, delivery_id)
        assert (row.state, row.lease_owner) == ("pending", None)
        assert row.next_attempt_at is not None
        assert row.next_attempt_at > utcnow()
        [attempt] = attempts(runtime, delivery_id)
        assert attempt.status_code in (500, 503)
        assert attempt.error
    # a success in the same batch: the endpoint is not failing
    assert endpoint(runtime, s.endpoint_id).failing_since is None


def test_a_410_in_a_batch_disables_the_endpoint_and_fails_the_retries(
    api: Api, runtime: Runtime, receiver: Receiver
):
    s = add_endpoint(api, receiver.url)
    receiver.script = [(500, {}), (410, {}), (500, {})]
    ids = emit_many(runtime, s.occasion_id, 3)
    waiting = emit(runtime, s.occasion_id)

    done = webhooks.deliver_many(runtime, ids, worker_id="w1")

    assert sorted(d.label for d in done) == ["failed", "failed", "gone"]
    for delivery_id in [*ids, *waiting]:
        assert delivery(runtime, delivery_id).state == "failed"
    assert endpoint(runtime, s.endpoint_id).state == "disabled"


def test_the_dispatcher_hands_many_ids_out_in_batch_tasks(runtime: Runtime):
    huey = MemoryHuey(immediate=False)
    tasks = register_tasks(huey, runtime, worker_id="w1", keeper=None)
    dispatcher = HueyDispatcher(tasks)

    dispatcher.webhook_deliveries([f"whd_{n}" for n in range(60)])
    dispatcher.webhook_delivery("whd_one")

    pending = huey.pending()
    assert [t.name for t in pending] == [DELIVER_MANY_TASK] * 3 + [DELIVER_TASK]
    assert [len(t.args[0]) for t in pending[:3]] == [25, 25, 10]
    assert [i for t in pending[:3] for i in t.args[0]] == [f"whd_{n}" for n in range(60)]


def test_each_delivery_of_a_batch_carries_the_request_id_that_queued_it(
    api: Api, runtime: Runtime, receiver: Receiver, caplog: Any
):
    s = add_endpoint(api, receiver.url)
    queued: dict[str, str] = {}
    for n in range(3):
        with trace.bound(f"trace-batch-{n}"):
            for delivery_id in emit(runtime, s.occasion_id):
                queued[delivery_id] = f"trace-batch-{n}"
    [unqueued] = emit(runtime, s.occasion_id)  # no request behind it: traced by its own id
    queued[unqueued] = unqueued

    with caplog.at_level(logging.INFO, logger="tovplus.services.webhooks"):
        done = webhooks.deliver_many(runtime, list(queued), worker_id="w1", concurrency=2)

    assert sorted(d.label for d in done) == ["delivered"] * 4
    sent = {r.headers["webhook-id"]: r.headers.get("x-request-id") for r in receiver.received}
    assert sent == queued
    logged = {
        rec.getMessage().split()[2]: getattr(rec, "request_id", None)
        for rec in caplog.records
        if rec.getMessage().startswith("webhook delivery ")
    }
    assert logged == queued
    assert trace.current() is None
