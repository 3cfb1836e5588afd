"""Private files: the data dir is created 0700 and the files TOV Plus creates in it 0600.

SQLite gives a database's ``-wal`` and ``-shm`` files the mode of the database file, so
creating the database file 0600 before SQLite first opens it keeps all three private (the
same holds for Huey's SQLite queue). Directories and files that already exist keep their
modes: an operator may have chosen them.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Create the directory ``path`` 0700 (and any missing parents, with default modes) if absent."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE)
    except FileExistsError:
        return  # another process made it first
    os.chmod(path, PRIVATE_DIR_MODE)  # whatever the umask took away


def create_private_file(path: Path) -> None:
    """Create ``path`` as an empty 0600 file (its directory 0700) unless it exists.

    SQLite opens an empty file as a new database.
    """
    make_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)
