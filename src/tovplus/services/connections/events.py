"""The webhook events of a connection's lifecycle (created, enabled, disabled, revoked), written to
the outbox in the transaction that changes the connection and dispatched after it commits."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tovplus.db.models import Connection
from tovplus.db.states import ConnectionState
from tovplus.runtime import Runtime
from tovplus.services import webhooks

#: The event type of each state a connection can move to (``created`` is emitted on creation).
_EVENT_OF_STATE = {
    ConnectionState.ENABLED: "integration.connection_enabled",
    ConnectionState.DISABLED: "integration.connection_disabled",
    ConnectionState.REVOKED: "integration.connection_revoked",
}


def _emit(rt: Runtime, session: Session, row: Connection, event_type: str, state: str) -> None:
    data = {
        "connection_id": row.id,
        "integration_key": row.integration_key,
        "occasion_id": row.occasion_id,
        "state": str(state),
    }
    ids = webhooks.emit_event(session, occasion_id=row.occasion_id, event_type=event_type, data=data)
    webhooks.dispatch_after_commit(session, rt, ids)


def connection_created(rt: Runtime, session: Session, row: Connection) -> None:
    """``integration.connection_created`` (and ``…_enabled`` when it starts enabled)."""
    _emit(rt, session, row, "integration.connection_created", row.state)
    if row.state == ConnectionState.ENABLED:
        _emit(rt, session, row, _EVENT_OF_STATE[ConnectionState.ENABLED], row.state)


def state_changed(rt: Runtime, session: Session, row: Connection, state: str) -> None:
    """The event of the state ``row`` has just moved to (none for a move to draft)."""
    event_type = _EVENT_OF_STATE.get(ConnectionState(state))
    if event_type is not None:
        _emit(rt, session, row, event_type, state)
