"""``tovplus db backup``: a consistent copy of the embedded database taken while ``serve`` takes
callbacks, the key-file reminder, no overwriting without ``--force``, and pg_dump on PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from tests.callbacks.test_callbacks import make_conn, order
from tests.conftest import BACKEND, Api
from tests.processes.test_cli import assert_one_line_failure, cli_env, run_cli, served
from tovplus.db.migrate import is_current
from tovplus.db.models import CallbackDelivery
from tovplus.db.session import Database

sqlite_only = pytest.mark.skipif(BACKEND != "sqlite", reason="the online backup is the embedded database's")


@dataclass
class Posted:
    delivery_id: str
    status: int
    answered_at: float  # time.monotonic() when the answer arrived


def post_until(stop: threading.Event, base: str, connection_id: str, key: str, out: list[Posted]) -> None:
    url = f"{base}/v1/integrations/callbacks/printing_partner/{connection_id}"
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            delivery_id = f"bk-{uuid.uuid4().hex[:12]}"
            r = client.post(
                url,
                json=order(f"ord-{delivery_id}"),
                headers={"x-tov-integration-secret": key, "x-tov-delivery-id": delivery_id},
            )
            out.append(Posted(delivery_id, r.status_code, time.monotonic()))


@sqlite_only
@pytest.mark.slow
def test_a_backup_taken_under_callback_load_holds_every_callback_answered_before_it(
    api: Api, database_url: str, secret_keys: str, tmp_path: Path
):
    conn = make_conn(api)
    env = cli_env(
        tmp_path / "data",
        database_url,
        TOVPLUS_SECRET_KEYS=secret_keys,
        TOVPLUS_QUEUE_URL=f"sqlite:///{tmp_path / 'queue.db'}",
        TOVPLUS_CALLBACK_RATE_PER_MINUTE="1000000",
    )
    target = tmp_path / "backups" / "tovplus.db"
    target.parent.mkdir()
    posted: list[Posted] = []
    stop = threading.Event()
    with served(env) as base:
        threads = [
            threading.Thread(target=post_until, args=(stop, base, conn.id, conn.key, posted))
            for _ in range(3)
        ]
        for t in threads:
            t.start()
        try:
            # the load is going (on a busy machine it takes longer to start than on a quiet one)
            deadline = time.monotonic() + 30
            while (
                sum(1 for p in list(posted) if p.status in (200, 202)) <= 20 and time.monotonic() < deadline
            ):
                time.sleep(0.1)
            backup_started = time.monotonic()
            result = run_cli("db", "backup", str(target), env=env)
            backup_ended = time.monotonic()
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join(15)
    assert result.returncode == 0, result.stderr
    assert "NOT in it" in result.stdout

    accepted_before = {
        p.delivery_id for p in posted if p.status in (200, 202) and p.answered_at < backup_started
    }
    during = [p for p in posted if backup_started <= p.answered_at <= backup_ended]
    assert len(accepted_before) > 20, "the load did not get going before the backup"
    assert during or posted[-1].answered_at > backup_ended, "no callback was answered around the backup"
    assert all(p.status in (200, 202) for p in posted), {p.status for p in posted}

    # restore: the copy is a database of its own, at the current schema, with every one of them
    with sqlite3.connect(target) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    restored = Database(f"sqlite:///{target}")
    try:
        assert is_current(restored.engine)
        with restored.read() as session:
            stored = set(
                session.scalars(
                    select(CallbackDelivery.delivery_id).where(CallbackDelivery.connection_id == conn.id)
                )
            )
    finally:
        restored.dispose()
    missing = accepted_before - stored
    assert not missing, f"{len(missing)} callbacks answered 2xx before the backup are not in it"


@sqlite_only
def test_backup_refuses_to_overwrite_without_force_and_never_holds_the_key(
    database_url: str, tmp_path: Path, api: Api, secret_keys: str
):
    make_conn(api)  # a stored secret, sealed with the key
    data_dir = tmp_path / "data"
    env = cli_env(data_dir, database_url)
    target = tmp_path / "copy.db"

    first = run_cli("db", "backup", str(target), env=env)
    assert first.returncode == 0, first.stderr
    key_file = data_dir / "secret.keys"
    assert str(key_file.resolve()) in first.stdout
    assert "NOT in it" in first.stdout
    made = target.stat()
    assert made.st_mode & 0o077 == 0, "the backup is readable by others"

    again = run_cli("db", "backup", str(target), env=env)
    assert "--force" in assert_one_line_failure(again)
    assert target.stat().st_mtime_ns == made.st_mtime_ns

    forced = run_cli("db", "backup", str(target), "--force", env=env)
    assert forced.returncode == 0, forced.stderr

    onto_key = run_cli("db", "backup", str(key_file), "--force", env=env)
    assert "master key" in assert_one_line_failure(onto_key)

    backup_bytes = target.read_bytes()
    _key_id, _, key = secret_keys.partition(":")  # the key the connection's secret was sealed with
    assert key.encode() not in backup_bytes
    assert b"pk_live_ABCDEFGHIJKLMNOP" not in backup_bytes  # the secret itself is sealed

    with_env_keys = run_cli(
        "db", "backup", str(target), "--force", env={**env, "TOVPLUS_SECRET_KEYS": secret_keys}
    )
    assert "TOVPLUS_SECRET_KEYS" in with_env_keys.stdout
    assert key not in with_env_keys.stdout
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    assert leftovers == []


def test_backup_of_postgresql_points_at_pg_dump(database_url: str, tmp_path: Path):
    url = database_url
    if BACKEND == "sqlite":  # the message is about the URL, not the server: any PostgreSQL URL will do
        url = "postgresql://tovplus@127.0.0.1:1/tovplus"
    result = run_cli("db", "backup", str(tmp_path / "x.db"), env=cli_env(tmp_path / "data", url))
    line = assert_one_line_failure(result)
    assert "pg_dump" in line
    assert make_url(url).password is None or make_url(url).password not in line
    assert not (tmp_path / "x.db").exists()


def test_prune_json_is_one_object(database_url: str, tmp_path: Path):
    result = run_cli("db", "prune", "--dry-run", "--json", env=cli_env(tmp_path / "data", database_url))
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["dry_run"] is True
    assert [t["table"] for t in body["tables"]] == [
        "callback_deliveries",
        "activity",
        "webhook_deliveries",
        "webhook_attempts",
        "sync_runs",
        "action_runs",
        "platform_events",
    ]
