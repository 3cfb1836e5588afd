"""A grant the partner no longer accepts: ``reconnect_required``, health ``failing``, an activity entry.

Written by the refresher that holds the grant's lease, in one transaction and fenced like a
refresh (a refresher whose lease was taken over writes nothing). The tokens are cleared; the
connection keeps its id, key, grants, records and history, and ``authorize`` again reconnects it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from tovplus.db.models import Connection, OAuthGrant
from tovplus.db.states import ConnectionState
from tovplus.db.write_lock import locked_write
from tovplus.integrations.auth import AuthorizationStatus
from tovplus.integrations.contract import Health
from tovplus.runtime import Runtime
from tovplus.services import activity, health

RECONNECT_REQUIRED_KIND = "connection.reconnect_required"
_SYSTEM = "system"


def reconnect_reason(partner: str) -> str:
    """The health reason (and error) a planner can act on."""
    return (
        f"{partner} no longer accepts this connection's credentials: press Reconnect on the "
        f"connection's page to grant access again."
    )


def mark_reconnect_required(
    rt: Runtime, connection_id: str, *, owner: str, fence: int, partner: str, error: str, now: datetime
) -> bool:
    """Record that the grant is gone, if ``owner`` still holds lease ``fence``; ``True`` if written."""
    reason = reconnect_reason(partner)
    deliveries: list[str] = []
    with locked_write(rt.db) as session:
        written = session.execute(
            update(OAuthGrant)
            .where(
                OAuthGrant.connection_id == connection_id,
                OAuthGrant.lease_owner == owner,
                OAuthGrant.lease_fence == fence,
            )
            .values(
                status=AuthorizationStatus.RECONNECT_REQUIRED.value,
                access_key_id=None,
                access_nonce=None,
                access_ciphertext=None,
                refresh_key_id=None,
                refresh_nonce=None,
                refresh_ciphertext=None,
                expires_at=None,
                token_version=OAuthGrant.token_version + 1,
                lease_owner=None,
                lease_expires_at=None,
                last_error=f"The partner refused the refresh ({error}).",
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if written.rowcount != 1:  # type: ignore[attr-defined]
            return False
        conn = session.get(Connection, connection_id)
        if conn is not None:
            deliveries = _fail_health(session, conn, reason)
            activity.record(
                session,
                kind=RECONNECT_REQUIRED_KIND,
                actor=_SYSTEM,
                summary=reason,
                occasion_id=conn.occasion_id,
                connection_id=conn.id,
                integration_key=conn.integration_key,
                details={"error": error[:80]},
            )
    for delivery_id in deliveries:
        rt.dispatcher.webhook_delivery(delivery_id)
    return True


def _fail_health(session: Session, conn: Connection, reason: str) -> list[str]:
    """Health ``failing`` with ``reason`` (an enabled connection's); announces the change."""
    previous = conn.health
    conn.sync_health, conn.sync_health_reasons = Health.FAILING.value, [reason]
    if conn.state == ConnectionState.ENABLED:
        conn.health, conn.health_reasons = Health.FAILING.value, [reason]
    # ``version`` stays: it fences planners' edits, and a sync run that is refreshing right now
    # must finish (as failed on the credentials), not be discarded as "edited during the sync"
    session.flush()
    return health.health_changed(
        session, conn, previous=previous, health=conn.health, reasons=list(conn.health_reasons)
    )
