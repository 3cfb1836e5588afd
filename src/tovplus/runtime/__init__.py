"""The process's shared dependencies, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field

from tovplus.db.session import Database
from tovplus.integrations.registry import AdapterRegistry, default_registry
from tovplus.runtime.dispatch import Dispatcher, NullDispatcher
from tovplus.runtime.keyring import Keyring
from tovplus.runtime.master_keys import given_keyring, open_keyring
from tovplus.runtime.tracing import configure_tracing
from tovplus.settings import Settings


@dataclass(eq=False)
class Runtime:
    """Settings, database, adapter registry and keyring: what every service call needs."""

    settings: Settings
    db: Database
    registry: AdapterRegistry
    keyring: Keyring
    dispatcher: Dispatcher = field(default_factory=NullDispatcher)

    def close(self) -> None:
        self.db.dispose()


def build_runtime(settings: Settings, *, registry: AdapterRegistry | None = None) -> Runtime:
    """Open the keyring and the database and load the adapters (plugins included).

    The keys given are read first, so a bad key setting stops the process before any file is
    created. Refuses (:class:`~tovplus.runtime.master_keys.MissingKeys`) a keyring that lacks a
    key the database's secrets were sealed with, and generates a key only for a database that
    holds no sealed value.
    """
    given = given_keyring(settings)
    db = Database(settings.resolved_database_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        keyring = open_keyring(settings, db, given)
    except BaseException:
        db.dispose()
        raise
    configure_tracing(settings, engine=db.engine)  # off by default: does nothing
    return Runtime(
        settings=settings,
        db=db,
        registry=registry if registry is not None else default_registry(),
        keyring=keyring,
    )
