"""Consistent copies of the embedded (SQLite) database while it is in use.

:func:`backup_sqlite` uses SQLite's online backup API in one step: the copy is the database
as of one read transaction (in WAL mode writers go on meanwhile; only checkpoints wait), so
everything committed before the backup started is in it. The copy is written beside the
target, checked (``PRAGMA quick_check``), switched to a rollback journal so it is one
self-contained file, made 0600, flushed to disk, and only then put in place: an interrupted
backup never leaves a half-written file under the target's name.

The master key never goes into a backup (secrets in it are sealed with it): the command line
says so and where the key is. PostgreSQL is backed up with ``pg_dump`` (docs/operations.md).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from tovplus.errors import Conflict, TovPlusError


class BackupFailed(TovPlusError):
    code = "backup_failed"


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    bytes: int
    seconds: float
    #: The schema revision (``alembic_version``) the copy is at; ``None`` for an unmigrated database.
    revision: str | None


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL; ``None`` for another backend (or an in-memory database)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def backup_sqlite(source: Path, target: Path, *, force: bool = False) -> BackupInfo:
    """Copy the database at ``source`` to ``target``; an existing ``target`` only with ``force``."""
    if not source.is_file():
        raise BackupFailed(f"there is no database at {source}")
    if target.exists() and target.resolve() == source.resolve():
        raise BackupFailed("the backup cannot replace the database itself")
    if target.exists() and not force:
        raise Conflict(f"{target} exists; pass --force to replace it", code="backup_exists")
    if target.is_dir():
        raise BackupFailed(f"{target} is a directory; name the backup file")
    started = time.perf_counter()
    partial = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        revision = _copy(source, partial)
        _flush(partial)
        if force:
            os.replace(partial, target)
        else:
            try:
                os.link(partial, target)  # refuses to overwrite one that appeared meanwhile
            except FileExistsError:
                raise Conflict(f"{target} exists; pass --force to replace it", code="backup_exists") from None
        _flush(target.parent)
    finally:
        partial.unlink(missing_ok=True)
    return BackupInfo(target, target.stat().st_size, time.perf_counter() - started, revision)


def _copy(source: Path, partial: Path) -> str | None:
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    src = sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
    dest = sqlite3.connect(partial)
    try:
        src.execute("PRAGMA busy_timeout=30000")
        src.backup(dest)  # pages=-1: the whole database in one step, as of one snapshot
        dest.execute("PRAGMA journal_mode=DELETE")
        (check,) = dest.execute("PRAGMA quick_check").fetchone()
        if check != "ok":
            raise BackupFailed(f"the copy failed its integrity check: {check}")
        try:
            row = dest.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            row = None
        return str(row[0]) if row else None
    except sqlite3.Error as exc:
        raise BackupFailed(f"the backup failed: {exc}") from None
    finally:
        dest.close()
        src.close()


def _flush(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
