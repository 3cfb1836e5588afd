"""What every ``tovplus`` command module shares: one-line failures and the settings.

``cli.py``, ``cli_db.py`` and ``cli_adapters.py`` import these; a command never shows a
traceback for a deliberate error, an unusable database or a file-system problem.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import typer

from tovplus.errors import TovPlusError
from tovplus.settings import Settings, load_settings

T = TypeVar("T")


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``tovplus: <message>`` on standard error; raise the returned ``Exit``."""
    typer.echo(f"tovplus: {message}", err=True)
    return typer.Exit(code)


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; a deliberate error, an unusable database or file system becomes one line, exit 2."""
    from sqlalchemy.exc import SQLAlchemyError

    from tovplus.db.session import describe_database_error

    try:
        return fn()
    except TovPlusError as exc:
        raise fail(exc.message) from None
    except SQLAlchemyError as exc:
        raise fail(describe_database_error(exc)) from None
    except OSError as exc:
        raise fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)) from None


def settings_or_exit() -> Settings:
    """The settings (or one line and exit 2), with logging configured from them."""
    settings = guarded(load_settings)
    from tovplus.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    return settings
