"""``tovplus db prune`` and ``tovplus db backup``: retention and backups from the command line.

Registered on the ``db`` group by :func:`add_db_commands` (``cli.py``); its one-line failures
come from ``cli_support``, like every command module's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from tovplus.cli_support import fail, guarded, settings_or_exit

if TYPE_CHECKING:
    from tovplus.services.retention import PruneReport
    from tovplus.settings import Settings

T = TypeVar("T")


def add_db_commands(db_app: typer.Typer) -> None:
    """Add ``prune`` and ``backup`` to the ``tovplus db`` group."""
    db_app.command("prune")(db_prune)
    db_app.command("backup")(db_backup)


def db_prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Delete what the retention settings let go (in small batches), or say what would go."""
    from tovplus.db.migrate import is_usable
    from tovplus.db.session import Database
    from tovplus.services import retention

    settings = settings_or_exit()
    db = guarded(
        lambda: Database(settings.resolved_database_url, sqlite_synchronous=settings.sqlite_synchronous)
    )
    if not guarded(lambda: is_usable(db.engine)):
        raise fail("the database schema is not current: run `tovplus db upgrade` first")
    if dry_run:
        report = guarded(lambda: retention.plan(db, settings))
    else:
        report = guarded(lambda: retention.prune(db, settings))
    db.dispose()
    typer.echo(json.dumps(report.as_dict()) if as_json else describe_prune(report, settings))


def describe_prune(report: PruneReport, settings: Settings) -> str:
    """The report as one line per table."""
    from tovplus.services.retention import RULES

    keep: dict[str, str] = {}
    for rule in RULES:
        days = rule.retention_days(settings)
        note = f"{days:g} days" if days else "kept for ever"
        if days and rule.keep_newest is not None:
            owner = rule.keep_newest.per.removesuffix("_id")
            note += f"; the newest {rule.keep_newest.count(settings)} per {owner} stay"
        keep[rule.name] = note
        for child in rule.children:
            keep[child.table.name] = f"with their {rule.name}"
    verb = "would delete" if report.dry_run else "deleted"
    width = max(len(t.table) for t in report.tables)
    lines = [f"{verb} {report.rows} rows" + (" (dry run)" if report.dry_run else "")]
    for t in report.tables:
        when = f" older than {t.older_than:%Y-%m-%d %H:%M} UTC" if t.older_than else ""
        lines.append(f"  {t.table:<{width}}  {t.rows:>9}{when} ({keep.get(t.table, '')})")
    return "\n".join(lines)


def db_backup(
    path: Annotated[Path, typer.Argument(help="The backup file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Copy the embedded database, consistently, while ``serve`` runs (SQLite's online backup)."""
    from tovplus.db.backup import backup_sqlite, sqlite_path

    settings = settings_or_exit()
    source = sqlite_path(settings.resolved_database_url)
    if source is None:
        raise fail(
            "the database is not the embedded SQLite one: back PostgreSQL up with pg_dump, e.g. "
            '`pg_dump --format=custom --file backup.dump "$DATABASE_URL"` (see docs/operations.md)'
        )
    if path.resolve() == key_file(settings).resolve():
        raise fail("that is the master key file: name another file for the backup")
    info = guarded(lambda: backup_sqlite(source, path, force=force))
    typer.echo(
        f"backed up {source} to {info.path} ({info.bytes} bytes, revision {info.revision}, "
        f"{info.seconds:.2f} s)"
    )
    typer.echo(key_reminder(settings))


def key_file(settings: Settings) -> Path:
    from tovplus.runtime.keyring import KEY_FILE_NAME

    return settings.data_dir / KEY_FILE_NAME


def key_reminder(settings: Settings) -> str:
    """Where the master key is: the backup is useless without it, and does not contain it."""
    where = (
        "the TOVPLUS_SECRET_KEYS setting"
        if settings.secret_keys
        else f"the key file {key_file(settings).resolve()}"
    )
    return (
        f"NOTE: stored secrets in this backup are sealed with the master key, which is NOT in it: "
        f"it is {where}. Keep a copy of it somewhere else than the backup (a secrets manager); "
        f"a backup without its key restores everything but the connection and webhook secrets."
    )
