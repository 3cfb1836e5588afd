"""Issue 13, finding 6: the data dir is 0700 and every file in it 0600; a loose key file is reported.

The start-up here is what ``tovplus serve`` does before it listens (build the runtime, migrate,
open the Huey queue), in a fresh data dir under a permissive umask (022), so nothing but the
code itself makes the files private.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tovplus.db.migrate import upgrade
from tovplus.runtime import build_runtime
from tovplus.runtime.keyring import KEY_FILE_NAME, Keyring, generate_key
from tovplus.settings import Settings
from tovplus.worker.queue import create_huey

pytestmark = pytest.mark.no_db  # its own SQLite files in a temporary data dir: runs once


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def embedded_settings(data_dir: Path) -> Settings:
    """The defaults of a fresh ``tovplus serve``: SQLite database and queue and a key file in the data dir."""
    return Settings(
        environment="test",
        data_dir=data_dir,
        database_url=None,
        queue_url=None,
        secret_keys=None,
        allow_private_urls=True,
    )


def test_serve_like_start_up_leaves_a_0700_data_dir_with_0600_files(tmp_path: Path, permissive_umask: None):
    data_dir = tmp_path / "var"
    settings = embedded_settings(data_dir)
    rt = build_runtime(settings)
    huey = create_huey(settings)
    try:
        upgrade(rt.db.engine)
        with rt.db.write() as session:  # a write, so the WAL files exist
            session.connection().exec_driver_sql("CREATE TABLE probe (x INTEGER)")
            session.connection().exec_driver_sql("INSERT INTO probe VALUES (1)")
        huey.storage.enqueue(b"probe", 0)
        files = sorted(p.name for p in data_dir.iterdir())
        for name in ("tovplus.db", "tovplus.db-wal", "tovplus.db-shm", "queue.db", KEY_FILE_NAME):
            assert name in files, files
        assert mode(data_dir) == 0o700
        assert {name: oct(mode(data_dir / name)) for name in files} == {name: oct(0o600) for name in files}
    finally:
        huey.storage.close()
        rt.close()


def test_a_database_and_queue_outside_the_data_dir_are_0600_too(tmp_path: Path, permissive_umask: None):
    elsewhere = tmp_path / "elsewhere" / "db"
    settings = embedded_settings(tmp_path / "var").model_copy(
        update={
            "database_url": f"sqlite:///{elsewhere / 'main.db'}",
            "queue_url": f"sqlite:///{elsewhere / 'q.db'}",
        }
    )
    rt = build_runtime(settings)
    huey = create_huey(settings)
    try:
        upgrade(rt.db.engine)
        huey.storage.enqueue(b"probe", 0)
        assert mode(elsewhere) == 0o700
        for path in elsewhere.iterdir():
            assert mode(path) == 0o600, path
    finally:
        huey.storage.close()
        rt.close()


def _key_file(data_dir: Path, file_mode: int) -> Path:
    data_dir.mkdir(mode=0o700)
    path = data_dir / KEY_FILE_NAME
    path.write_text(generate_key() + "\n")
    path.chmod(file_mode)
    return path


@pytest.mark.parametrize("file_mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_can_read_is_warned_about_with_the_fix(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, file_mode: int
):
    path = _key_file(tmp_path / "var", file_mode)
    with caplog.at_level(logging.WARNING, logger="tovplus.runtime.keyring"):
        Keyring.load(None, tmp_path / "var")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.records
    message = warnings[0].getMessage()
    assert str(path) in message
    assert f"chmod 600 {path}" in message
    assert oct(file_mode)[2:] in message


def test_start_up_warns_about_a_0644_key_file_and_not_after_the_fix(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    path = _key_file(tmp_path / "var", 0o644)
    with caplog.at_level(logging.WARNING, logger="tovplus.runtime.keyring"):
        build_runtime(embedded_settings(tmp_path / "var")).close()
    assert any(f"chmod 600 {path}" in r.getMessage() for r in caplog.records), caplog.records
    caplog.clear()
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="tovplus.runtime.keyring"):
        build_runtime(embedded_settings(tmp_path / "var")).close()
        Keyring.load(generate_key(), tmp_path / "var")  # keys from the environment: no file read
    assert [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("tovplus")] == []
