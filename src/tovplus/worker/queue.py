"""The Huey instance, chosen by ``settings.resolved_queue_url``.

* ``sqlite:///path`` (default ``<data dir>/queue.db``): Huey's SQLite storage (WAL,
  ``synchronous=NORMAL``: our tables are the truth, so a lost queue message costs a
  reaper round, never a run);
* ``postgresql://…``: Huey's PostgreSQL storage (psycopg 3, ``FOR UPDATE SKIP LOCKED`` and
  ``LISTEN``/``NOTIFY``, so idle workers wake at once);
* ``redis://…``: Huey's Redis storage;
* ``memory://``: in-process and immediate (a task runs inside the call that queues it; tests).

``?queue=<name>`` on any of them names the queue (default ``tovplus``), so several
deployments (or test runs) can share one storage.

Tasks carry only ids; Huey's result store is off.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from huey import Huey, MemoryHuey, RedisHuey
from huey.api import Task
from huey.storage import PostgresStorage, SqliteStorage
from sqlalchemy.engine import make_url

from tovplus.db.private_files import create_private_file
from tovplus.errors import ConfigurationError
from tovplus.settings import Settings

QUEUE_NAME = "tovplus"


class _SqliteStorage(SqliteStorage):  # type: ignore[misc]
    """Huey's SQLite storage with ``synchronous=NORMAL`` (survives a process crash, fsyncs less)."""

    def _create_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super()._create_connection()
        conn.execute("pragma synchronous=1")
        return conn


class _SqliteHuey(Huey):  # type: ignore[misc]
    storage_class = _SqliteStorage


#: The advisory lock every process takes around creating the queue's tables on PostgreSQL.
_SCHEMA_LOCK_KEY = 0x70B1_0001


class _PostgresStorage(PostgresStorage):  # type: ignore[misc]
    """Huey's PostgreSQL storage whose table creation is serialised by an advisory lock: two workers
    starting at once on a new database would otherwise both run ``CREATE TABLE IF NOT EXISTS`` and
    one would crash on ``pg_type``'s unique index (PostgreSQL checks "if not exists" without a lock)."""

    def initialize_schema(self) -> None:
        with self.db(commit=True, close=True) as curs:
            curs.execute("select pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
            for sql in self.ddl:
                curs.execute(sql)


class _PostgresHuey(Huey):  # type: ignore[misc]
    storage_class = _PostgresStorage


def split_queue_name(url: str, default: str = QUEUE_NAME) -> tuple[str, str]:
    """``(url without ?queue=, queue name)``: several deployments may share one storage."""
    base, _, query = url.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    names = [v for k, v in pairs if k == "queue"]
    rest = urlencode([(k, v) for k, v in pairs if k != "queue"])
    name = names[-1] if names and names[-1] else default
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,60}", name):
        raise ConfigurationError(
            "TOVPLUS_QUEUE_URL: ?queue= must be 1 to 60 letters, digits, '.', '_' or '-'"
        )
    return (f"{base}?{rest}" if rest else base), name


def create_huey(settings: Settings, *, name: str | None = None) -> Huey:
    """A Huey instance on the queue storage ``settings`` name (``?queue=`` names the queue)."""
    url, queue = split_queue_name(settings.resolved_queue_url)
    name = name or queue
    scheme = url.split(":", 1)[0].lower()
    common: dict[str, Any] = {"results": False, "utc": True}
    if scheme == "memory":
        return MemoryHuey(name, immediate=True, **common)
    if scheme == "sqlite":
        path = make_url(url).database
        if not path or path == ":memory:":
            raise ConfigurationError("TOVPLUS_QUEUE_URL: a SQLite queue needs a file path")
        create_private_file(Path(path))  # 0600, so its -wal and -shm are too
        return _SqliteHuey(name, filename=path, timeout=30, **common)
    if scheme.startswith(("postgresql", "postgres")):
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        return _PostgresHuey(name, dsn=dsn, read_timeout=1, **common)
    if scheme in ("redis", "rediss"):
        return RedisHuey(name, url=url, blocking=True, read_timeout=1, **common)
    raise ConfigurationError(
        "TOVPLUS_QUEUE_URL must start with sqlite://, postgresql://, redis:// or memory://"
    )


def enqueue_many(huey: Huey, tasks: Sequence[Task]) -> None:
    """Queue ``tasks`` in one storage transaction where the storage allows it (SQLite, PostgreSQL)."""
    if not tasks:
        return
    if huey.immediate:
        for task in tasks:
            huey.enqueue(task)
        return
    storage = huey.storage
    blobs = [huey.serialize_task(task) for task in tasks]
    if isinstance(storage, SqliteStorage):
        with storage.db(commit=True) as cursor:
            cursor.executemany(
                "insert into task (queue, data, priority) values (?, ?, ?)",
                [(storage.name, storage.to_blob(blob), 0) for blob in blobs],
            )
    elif isinstance(storage, PostgresStorage):
        with storage.db(commit=True) as cursor:
            cursor.execute(
                f"insert into {storage.table_task} (queue, data, priority)"  # noqa: S608 - Huey's table
                " select %s, t.data, 0 from unnest(%s::bytea[]) with ordinality as t(data, n) order by t.n",
                (storage.name, blobs),
            )
            cursor.execute("select pg_notify(%s, %s)", (storage.channel, ""))
    else:
        for blob in blobs:
            storage.enqueue(blob, 0)
