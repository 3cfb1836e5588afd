"""Refreshing grants ahead of expiry even when no sync or action needs them (the leader's ticks).

Each refresh goes through :class:`~.refresh.GrantTokenSource`, so it takes the same fenced lease
as a sync or an action would: a tick never races a worker. A grant whose refresh failed for a
transient reason waits :data:`RETRY_AFTER_SECONDS` in this process before it is tried again.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

import httpx
from sqlalchemy import or_, select

from tovplus.db.models import Connection, OAuthGrant
from tovplus.db.states import ConnectionState
from tovplus.db.types import utcnow
from tovplus.errors import CredentialsRejected, TovPlusError
from tovplus.integrations.auth import AuthorizationStatus
from tovplus.runtime import Runtime
from tovplus.services.oauth.refresh import GrantTokenSource

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 60.0
_failed: dict[str, float] = {}
_failed_lock = threading.Lock()


def expiring_grants(rt: Runtime, now: datetime, limit: int) -> list[str]:
    """Enabled connections whose authorized grant expires within the margin and is not leased now."""
    horizon = now + timedelta(seconds=rt.settings.oauth_refresh_margin_seconds)
    with rt.db.read() as session:
        return list(
            session.scalars(
                select(OAuthGrant.connection_id)
                .join(Connection, Connection.id == OAuthGrant.connection_id)
                .where(
                    OAuthGrant.status == AuthorizationStatus.AUTHORIZED.value,
                    OAuthGrant.expires_at.is_not(None),
                    OAuthGrant.expires_at <= horizon,
                    or_(OAuthGrant.lease_owner.is_(None), OAuthGrant.lease_expires_at < now),
                    Connection.state == ConnectionState.ENABLED.value,
                )
                .order_by(OAuthGrant.expires_at)
                .limit(limit)
            )
        )


def refresh_expiring(
    rt: Runtime,
    *,
    owner: str,
    now: datetime | None = None,
    limit: int = 50,
    http: httpx.Client | None = None,
) -> int:
    """Refresh what :func:`expiring_grants` finds (one at a time); returns how many hold a fresh token.

    ``http``: the client the token calls go over (default: the process's partner client).
    """
    now = now or utcnow()
    refreshed = 0
    for connection_id in expiring_grants(rt, now, limit):
        with _failed_lock:
            if _failed.get(connection_id, 0.0) > time.monotonic():
                continue
        try:
            GrantTokenSource(rt, connection_id, owner, http=http).access_token()
            refreshed += 1
        except CredentialsRejected:  # recorded (reconnect_required) or an operator's step: said elsewhere
            _cool_down(connection_id)
        except TovPlusError as exc:
            log.warning("refreshing connection %s ahead of expiry failed: %s", connection_id, exc.message)
            _cool_down(connection_id)
    return refreshed


def _cool_down(connection_id: str) -> None:
    now = time.monotonic()
    with _failed_lock:
        for done in [cid for cid, until in _failed.items() if until <= now]:
            del _failed[done]
        _failed[connection_id] = now + RETRY_AFTER_SECONDS
