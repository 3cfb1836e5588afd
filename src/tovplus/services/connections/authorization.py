"""Connecting an ``oauth2`` connection: "Connect with <partner>" and the partner's callback.

``services.oauth`` runs the OAuth side (state, PKCE, code exchange, sealed grant); this module adds
what belongs to the connection: who may ask, and, in the transaction that stores the grant, the
validation judged again (the ``authorization`` error goes away), health, a schedule that paused
or a grant that needed reconnecting cleared, and a first sync queued when the connection is enabled.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from tovplus.db.models import Connection
from tovplus.db.states import ConnectionState, SyncTrigger
from tovplus.db.types import utcnow
from tovplus.errors import Forbidden
from tovplus.integrations.auth import AuthorizationStatus
from tovplus.integrations.contract import Health, ScopeType
from tovplus.runtime import Runtime
from tovplus.services import health, oauth
from tovplus.services import sync as syncs
from tovplus.services.auth import MANAGE, Caller, UserCaller, authorize, require_admin
from tovplus.services.connections import store


def authorize_connection(
    rt: Runtime, caller: Caller, occasion_id: str, connection_id: str, return_to: str | None
) -> str:
    """``POST …/authorize``: the partner's authorization URL for this connection and caller.

    The state is bound to the calling user: the callback must come from a browser signed in as them.
    """
    with rt.db.write() as session:
        authorize(session, caller, MANAGE, occasion_id)
        row = store.load_connection(session, occasion_id, connection_id)
        if row.scope_type == ScopeType.PLATFORM.value:
            require_admin(caller)
        if not isinstance(caller, UserCaller):  # pragma: no cover - MANAGE is for users only
            raise Forbidden("Only planners and admins connect integrations.")
        return oauth.begin_authorization(session, rt, row, caller.user_id, return_to)


def finish_authorization(
    rt: Runtime, *, code: str | None, state: str | None, error: str | None, session_user: UserCaller | None
) -> oauth.CallbackOutcome:
    """``GET /v1/integrations/oauth/callback``: see :func:`tovplus.services.oauth.complete_authorization`."""
    return oauth.complete_authorization(
        rt, code=code, state=state, error=error, session_user=session_user, on_authorized=_authorized(rt)
    )


def _authorized(rt: Runtime) -> oauth.OnAuthorized:
    def after(session: Session, row: Connection, previous: AuthorizationStatus, actor: str) -> Sequence[str]:
        adapter = rt.registry.find(row.integration_key)
        if adapter is None:
            return []
        sync_health, sync_reasons = row.sync_health, list(row.sync_health_reasons)
        values: dict[str, object] = {"updated_at": utcnow()}
        if previous == AuthorizationStatus.RECONNECT_REQUIRED:
            # the refused grant was the last verdict; the sync queued now judges the new one
            sync_health, sync_reasons = Health.UNKNOWN.value, []
            values.update(sync_health=sync_health, sync_health_reasons=sync_reasons)
        present = frozenset(store.secrets_present(session, row.id))
        validation = health.validation_of(rt, adapter, row, present, AuthorizationStatus.AUTHORIZED)
        shown, reasons = health.effective_health(row.state, validation, sync_health, sync_reasons)
        values.update(health=shown, health_reasons=reasons)
        health.health_changed(session, row, previous=row.health, health=shown, reasons=reasons)
        enabled, suspended = row.state == ConnectionState.ENABLED, health.is_suspended(row)
        store.conditional_update(session, row, values)
        if not (enabled and adapter.supports_background_sync) or suspended:
            return []
        syncs.resume_schedule(session, row.id)
        run_id, created = syncs.enqueue_run(session, row.id, trigger=SyncTrigger.MANUAL, requested_by=actor)
        return [run_id] if created else []

    return after
