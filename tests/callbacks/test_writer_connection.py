"""The callback writer's held connection: reused between batches, dropped after a failure."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.callbacks.test_callbacks import Conn, order, printing  # noqa: F401 - the fixture
from tests.conftest import assert_error
from tovplus.db.models import CallbackDelivery
from tovplus.runtime import Runtime
from tovplus.services.callbacks.connection import WriterConnection


def _dbapi(session: Session) -> Any:
    return session.connection().connection.dbapi_connection


def _deliveries(runtime: Runtime) -> int:
    with runtime.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(CallbackDelivery)) or 0)


@pytest.fixture
def held(runtime: Runtime) -> Iterator[WriterConnection]:
    """A writer connection for a test that makes its own table ``t_held``; both go afterwards."""
    connection = WriterConnection(runtime.db)
    yield connection
    connection.close()
    with runtime.db.write() as s:
        s.execute(text("DROP TABLE IF EXISTS t_held"))


def test_the_connection_is_kept_between_transactions_and_each_commits(
    runtime: Runtime, held: WriterConnection
) -> None:
    with held.transaction() as session:
        first = _dbapi(session)
        session.execute(text("CREATE TABLE t_held (n INTEGER)"))
        session.execute(text("INSERT INTO t_held VALUES (1)"))
    with held.transaction() as session:
        assert _dbapi(session) is first
        session.execute(text("INSERT INTO t_held VALUES (2)"))
    with runtime.db.read() as s:  # another connection sees both: each block committed
        assert s.scalar(text("SELECT count(*) FROM t_held")) == 2


def _raise_in_the_batch(session: Session, held: WriterConnection, insert: str) -> None:
    session.execute(text("INSERT INTO t_held VALUES (1)"))
    raise RuntimeError("the batch failed")


def _fail_a_deferred_statement(session: Session, held: WriterConnection, insert: str) -> None:
    session.execute(text("INSERT INTO t_held VALUES (1)"))
    held.defer(insert, [2])
    held.defer(insert, [1])  # the primary key again: the commit fails


@pytest.mark.parametrize(
    ("failing", "error"),
    [(_raise_in_the_batch, "the batch failed"), (_fail_a_deferred_statement, r"(?i)unique|duplicate")],
)
def test_a_failed_transaction_rolls_back_and_the_next_one_gets_a_new_connection(
    runtime: Runtime, held: WriterConnection, failing: Any, error: str
) -> None:
    with held.transaction() as session:
        session.execute(text("CREATE TABLE t_held (n INTEGER PRIMARY KEY)"))
        first = _dbapi(session)

    def batch() -> None:
        with held.transaction() as session:
            failing(session, held, _insert(runtime))

    with pytest.raises(Exception, match=error):
        batch()
    assert held._connection is None  # dropped, as after any failed batch
    with held.transaction() as session:
        assert _dbapi(session) is not first
        assert session.scalar(text("SELECT count(*) FROM t_held")) == 0


def test_on_sqlite_the_transaction_holds_the_write_lock_from_its_start(runtime: Runtime) -> None:
    if not runtime.db.is_sqlite:
        pytest.skip("SQLite only")
    held = WriterConnection(runtime.db)
    path = runtime.db.engine.url.database
    assert path is not None
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with held.transaction() as session:
            _dbapi(session)  # begins: BEGIN IMMEDIATE, before any statement of the batch
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once committed
        other.execute("ROLLBACK")
    finally:
        other.close()
        held.close()


def test_a_batch_that_fails_in_the_database_is_503_then_the_next_one_is_stored(
    printing: Conn,  # noqa: F811 - the fixture
    runtime: Runtime,
) -> None:
    assert printing.post(order(), delivery="held-1").status_code == 202
    service = printing.api.client.app.state.callback_service  # type: ignore[attr-defined]
    real = service._process
    before = service.connection._connection
    assert before is not None  # held after the first batch

    def broken(session: Session, jobs: Any, defer: Any = None) -> Any:
        real(session, jobs, defer)  # writes, then the database "fails": all rolled back
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    service._process = broken
    try:
        r = printing.post(order(status="lost"), delivery="held-2")
    finally:
        service._process = real
    assert_error(r, 503, "unavailable")
    assert service.connection._connection is None  # dropped with the failed batch
    assert _deliveries(runtime) == 1
    assert printing.post(order(status="shipped"), delivery="held-2").status_code == 202
    assert service.connection._connection is not None
    assert service.connection._connection is not before
    assert _deliveries(runtime) == 2


def test_a_connection_idle_too_long_goes_back_to_the_pool(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tovplus.services.callbacks import connection as module

    held = WriterConnection(runtime.db)
    try:
        with held.transaction() as session:
            session.execute(text("SELECT 1"))
        first = held._connection
        with held.transaction() as session:
            session.execute(text("SELECT 1"))
        assert held._connection is first  # used again at once: kept
        monkeypatch.setattr(module, "IDLE_SECONDS", -1.0)
        with held.transaction() as session:
            session.execute(text("SELECT 1"))
        assert held._connection is not None
        assert held._connection is not first  # idle "too long": a new checkout
    finally:
        held.close()


def _insert(runtime: Runtime) -> str:
    """A DBAPI insert of one value into ``t_held``, in the driver's placeholder style."""
    return "INSERT INTO t_held VALUES (?)" if runtime.db.is_sqlite else "INSERT INTO t_held VALUES (%s)"


def test_deferred_statements_run_before_the_commit_and_are_committed_with_the_batch(
    runtime: Runtime, held: WriterConnection
) -> None:
    insert = _insert(runtime)
    with held.transaction() as session:
        session.execute(text("CREATE TABLE t_held (n INTEGER)"))
    with held.transaction() as session:
        session.execute(text("INSERT INTO t_held VALUES (1)"))
        held.defer(insert, [2])
        held.defer(insert, [3])
        # not run yet: they go with the commit
        assert session.scalar(text("SELECT count(*) FROM t_held")) == 1
    with runtime.db.read() as s:
        assert sorted(s.scalars(text("SELECT n FROM t_held"))) == [1, 2, 3]
    with held.transaction() as session:  # a new transaction starts with nothing deferred
        session.execute(text("SELECT 1"))
    with runtime.db.read() as s:
        assert s.scalar(text("SELECT count(*) FROM t_held")) == 3
