"""What one batch of callbacks carries between its steps (internal to the package)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tovplus.integrations.contract import CallbackResult
from tovplus.runtime.keyring import Sealed
from tovplus.services.callbacks.inbound import InboundCallback


@dataclass(frozen=True, slots=True)
class Key:
    """A live issued key of the connection: its secret only as a SHA-256 hex digest, and its
    callback signing secret sealed (``None`` for adapters without signed callbacks and for
    keys issued before signing secrets existed)."""

    key_id: str
    secret_hash: str
    last_used_at: datetime | None
    signing: Sealed | None = None


@dataclass(slots=True)
class Target:
    """The connection a callback names, with its live keys."""

    connection_id: str
    integration_key: str
    state: str
    occasion_id: str
    config: Mapping[str, Any]
    keys: list[Key] = field(default_factory=list)
    #: An admin suspended its adapter (the kill switch): callbacks answer 409 integration_suspended.
    suspended: bool = False


@dataclass(frozen=True, slots=True)
class Tx:
    """One batch's transaction: the session, a DBAPI cursor on its connection, the dialect name,
    and ``tail``: a cursor whose statements run just before the commit, in one round trip with it
    on PostgreSQL (:meth:`~tovplus.services.callbacks.connection.WriterConnection.defer`; nobody
    can read their results)."""

    session: Session
    cursor: Any
    dialect: str
    tail: TailCursor


class TailCursor:
    """The ``execute`` of a DBAPI cursor, for statements deferred to the commit."""

    __slots__ = ("execute",)

    def __init__(self, defer: Callable[[str, Sequence[Any]], None]) -> None:
        self.execute = defer


@dataclass(slots=True)
class Accepted:
    """A callback that passed every check: job ``index`` of the batch and what it maps to."""

    index: int
    job: InboundCallback
    target: Target
    result: CallbackResult
    delivery_id: str | None
    activity_id: str = ""
