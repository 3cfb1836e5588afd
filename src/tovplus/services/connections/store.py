"""Reading and writing connection rows: every write is conditional on the version it read.

Two concurrent requests cannot both win: the loser's update matches no row
(:class:`StaleWrite`), and :func:`retrying` runs it again against the new state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tovplus.db.models import Connection, IntegrationPrincipal
from tovplus.errors import Conflict, NotFound
from tovplus.integrations.contract import Adapter
from tovplus.services import credentials
from tovplus.services.auth import is_id

T = TypeVar("T")


class StaleWrite(Exception):
    """Internal: the row changed between read and conditional update."""


def retrying(fn: Callable[[], T], attempts: int = 3) -> T:
    """Run ``fn`` (one transaction) again while it loses a race; 409 after ``attempts``."""
    for attempt in range(attempts):
        try:
            return fn()
        except StaleWrite:
            if attempt == attempts - 1:
                raise Conflict("The connection changed while this request ran; try again.") from None
    raise AssertionError("unreachable")


def load_connection(session: Session, occasion_id: str, connection_id: str) -> Connection:
    """The occasion's connection (404 for other occasions' ids and ids that cannot exist)."""
    row = session.get(Connection, connection_id) if is_id(connection_id) else None
    if row is None or row.occasion_id != occasion_id:
        raise NotFound("No such connection.")
    return row


def principal_of(session: Session, connection_id: str) -> IntegrationPrincipal:
    """The connection's integration principal (every connection has one)."""
    principal = session.scalar(
        select(IntegrationPrincipal).where(IntegrationPrincipal.connection_id == connection_id)
    )
    assert principal is not None, "every connection has a principal"
    return principal


def conditional_update(session: Session, row: Connection, values: Mapping[str, Any]) -> None:
    """``UPDATE … WHERE version = <read version>`` with the version bumped; :class:`StaleWrite` if lost."""
    result = session.execute(
        update(Connection)
        .where(Connection.id == row.id, Connection.version == row.version)
        .values(**values, version=row.version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StaleWrite
    session.expire(row)


def secrets_present(session: Session, connection_id: str) -> dict[str, str]:
    """``{field key: redacted value}`` of the connection's stored secrets."""
    return credentials.redacted_secrets(session, [connection_id])[connection_id]


def next_sync(adapter: Adapter, now: datetime) -> datetime | None:
    """When a newly enabled (or re-configured) connection syncs first: now, if it syncs at all."""
    return now if adapter.supports_background_sync else None
