"""Helpers shared by the sync, scheduler and worker tests: a live partner simulator on a loopback
port, connections made through the services, subprocesses of ``tovplus``, and polling."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import select

from tests import factories
from tovplus.db.models import Activity, Connection, SyncedRecord, SyncRun
from tovplus.partner_sim import DEMO_ACCOUNT_ID, DEMO_API_KEY, BackgroundServer, SimState, create_app
from tovplus.runtime import Runtime
from tovplus.services.auth import UserCaller
from tovplus.settings import Settings

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
TOVPLUS = str(ROOT / ".venv" / "bin" / "tovplus") if (ROOT / ".venv").exists() else "tovplus"


@dataclass
class Sim:
    url: str
    state: SimState

    def control(self, mode: str, **body: Any) -> None:
        r = httpx.post(f"{self.url}/_control", json={"mode": mode, **body}, timeout=5)
        assert r.status_code == 200, r.text

    def add_accounts(self, prefix: str, count: int, orders: int = 2) -> None:
        r = httpx.post(
            f"{self.url}/_control/accounts",
            json={"prefix": prefix, "count": count, "orders": orders},
            timeout=30,
        )
        assert r.status_code == 200, r.text

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/_control/stats", timeout=5).json())


@contextmanager
def simulator(*, step_seconds: float = 60.0, clock: Callable[[], float] | None = None) -> Iterator[Sim]:
    state = SimState(step_seconds=step_seconds, **({"clock": clock} if clock else {}))
    with BackgroundServer(create_app(state)) as server:
        yield Sim(server.url, state)


def tuned(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with short retry delays, leases and timeouts (and any ``changes``)."""
    base: dict[str, Any] = {
        "sync_retry_delays": (0.05, 0.05),
        "lease_seconds": 5.0,
        "sync_http_timeout_seconds": 2.0,
        "scheduler_tick_seconds": 0.2,
    }
    base.update(changes)
    return settings.model_copy(update=base)


@dataclass
class Made:
    occasion_id: str
    connection_id: str
    token: str
    caller: UserCaller


def planner(rt: Runtime) -> tuple[UserCaller, str]:
    """A new planner and its bearer token (``tests.factories.user``)."""
    made = factories.user(rt)
    assert made.token is not None
    return made.caller, made.token


def make_connection(
    rt: Runtime,
    base_url: str,
    *,
    account_id: str = DEMO_ACCOUNT_ID,
    api_key: str = DEMO_API_KEY,
    state: str = "enabled",
    interval: int | None = None,
    who: tuple[UserCaller, str] | None = None,
    occasion_id: str | None = None,
) -> Made:
    caller, token = who or planner(rt)
    if occasion_id is None:
        occasion_id = factories.occasion(rt, caller)
    result = factories.connection(
        rt,
        caller,
        occasion_id,
        config={"account_id": account_id, "api_base_url": base_url},
        secrets={"api_key": api_key},
        state=state,
        interval=interval,
    )
    return Made(occasion_id, result.connection["id"], token, caller)


def connection(rt: Runtime, connection_id: str) -> Connection:
    with rt.db.read() as session:
        row = session.get(Connection, connection_id)
        assert row is not None
        return row


def runs(rt: Runtime, connection_id: str) -> list[SyncRun]:
    with rt.db.read() as session:
        return list(
            session.scalars(
                select(SyncRun).where(SyncRun.connection_id == connection_id).order_by(SyncRun.id)
            )
        )


def kinds(rt: Runtime, connection_id: str) -> list[str]:
    """Activity kinds of a connection, oldest first."""
    with rt.db.read() as session:
        return list(
            session.scalars(
                select(Activity.kind).where(Activity.connection_id == connection_id).order_by(Activity.id)
            )
        )


def activity_of(rt: Runtime, connection_id: str, kind: str) -> list[Activity]:
    with rt.db.read() as session:
        return list(
            session.scalars(
                select(Activity)
                .where(Activity.connection_id == connection_id, Activity.kind == kind)
                .order_by(Activity.id)
            )
        )


def records(rt: Runtime, connection_id: str) -> dict[str, SyncedRecord]:
    with rt.db.read() as session:
        rows = session.scalars(select(SyncedRecord).where(SyncedRecord.connection_id == connection_id))
        return {r.external_id: r for r in rows}


def wait_for(
    predicate: Callable[[], T], *, timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def queue_url_for(request: Any, tmp_path: Path) -> str:
    """A queue of its own for one test: a SQLite file, or on PostgreSQL a uniquely named queue whose
    tables live in a schema of their own in the test database (creating a database costs seconds;
    the app's ``public`` schema stays exactly what the migrations make)."""
    from sqlalchemy import text

    from tests.conftest import BACKEND

    if BACKEND != "postgresql":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    database_url = request.getfixturevalue("database_url")
    from tovplus.db.session import create_db_engine

    engine = create_db_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE SCHEMA IF NOT EXISTS tovplus_queue"))
    finally:
        engine.dispose()
    return f"{database_url}?options=-csearch_path%3Dtovplus_queue&queue=t{os.urandom(6).hex()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a ``tovplus`` subprocess sharing ``settings``' database and keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOVPLUS_")}
    env.update(
        {
            "TOVPLUS_ENVIRONMENT": "test",
            "TOVPLUS_DATA_DIR": str(settings.data_dir),
            "TOVPLUS_DATABASE_URL": settings.resolved_database_url,
            "TOVPLUS_SECRET_KEYS": settings.secret_keys or "",
            "TOVPLUS_ALLOW_PRIVATE_URLS": "true",
            "TOVPLUS_LEASE_SECONDS": str(settings.lease_seconds),
            "TOVPLUS_SCHEDULER_TICK_SECONDS": str(settings.scheduler_tick_seconds),
            "TOVPLUS_SYNC_RETRY_DELAYS": ",".join(str(d) for d in settings.sync_retry_delays),
            "TOVPLUS_SYNC_HTTP_TIMEOUT_SECONDS": str(settings.sync_http_timeout_seconds),
            "TOVPLUS_LOG_LEVEL": "INFO",
        }
    )
    if settings.queue_url:
        env["TOVPLUS_QUEUE_URL"] = settings.queue_url
    env.update(extra)
    return env


class Proc:
    """A ``tovplus`` subprocess whose output goes to a log file (shown when a test fails)."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(
            [TOVPLUS, *args], env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=str(ROOT)
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = 15, timeout: float = 15.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()
        return int(self.popen.returncode)


def wait_http(url: str, *, timeout: float = 30.0, proc: Proc | None = None) -> None:
    def up() -> bool:
        if proc is not None and proc.popen.poll() is not None:
            raise AssertionError(f"process exited early:\n{proc.output()[-3000:]}")
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=timeout, interval=0.1, what=url)


PYTHON = sys.executable
