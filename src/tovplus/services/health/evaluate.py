"""A connection's health: its validation against the adapter, and the verdict shown for it.

``health`` (stored, filtered and counted by the admin list) is the last sync's verdict
(``sync_health``) with validation drift on top; only an enabled connection has one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from tovplus.db.models import OAuthGrant
from tovplus.db.states import ConnectionState
from tovplus.integrations.auth import AuthorizationStatus
from tovplus.integrations.contract import (
    Adapter,
    Health,
    Scope,
    ScopeType,
    ValidationContext,
    ValidationResult,
    validate_connection,
)
from tovplus.runtime import Runtime

#: The reason shown for an enabled connection whose adapter is not installed any more.
NOT_INSTALLED_REASON = "This integration is not installed any more; revoke the connection."
_HEALTH_ORDER = {Health.UNKNOWN: 0, Health.HEALTHY: 1, Health.DEGRADED: 2, Health.FAILING: 3}


class ScopedConfig(Protocol):
    """What validation reads of a connection row: its settings and where it is installed."""

    @property
    def occasion_id(self) -> str: ...
    @property
    def config(self) -> Mapping[str, Any]: ...
    @property
    def scope_type(self) -> str: ...
    @property
    def scope_event_id(self) -> str | None: ...


def scope_of(row: ScopedConfig) -> Scope:
    """The scope a connection row is installed at (platform, its occasion, or one event)."""
    scope_type = ScopeType(row.scope_type)
    return Scope(
        scope_type,
        None if scope_type is ScopeType.PLATFORM else row.occasion_id,
        row.scope_event_id if scope_type is ScopeType.EVENT else None,
    )


def validation_of(
    rt: Runtime,
    adapter: Adapter,
    row: ScopedConfig,
    secrets_present: frozenset[str],
    authorization: AuthorizationStatus | None = None,
) -> ValidationResult:
    """The adapter's verdict on the row's config, the secrets present, its scope and (for an
    ``oauth2`` adapter) where its grant stands (:func:`authorization_of`)."""
    return validate_connection(
        adapter,
        ValidationContext(
            config=row.config,
            secrets_present=secrets_present,
            scope=scope_of(row),
            allow_private_urls=rt.settings.allow_private_urls,
            authorization=authorization,
        ),
    )


def authorizations(
    session: Session, adapters: Mapping[str, Adapter | None]
) -> dict[str, AuthorizationStatus | None]:
    """``{connection id: grant status}`` for validation: ``None`` for api-key adapters (no query),
    ``pending`` for an ``oauth2`` connection without a grant. ``adapters`` maps connection ids."""
    oauth_ids = [cid for cid, a in adapters.items() if a is not None and a.oauth2 is not None]
    found: dict[str, AuthorizationStatus | None] = dict.fromkeys(adapters)
    if not oauth_ids:
        return found
    rows = session.execute(
        select(OAuthGrant.connection_id, OAuthGrant.status).where(OAuthGrant.connection_id.in_(oauth_ids))
    ).all()
    stored = {cid: AuthorizationStatus(status) for cid, status in rows}
    for cid in oauth_ids:
        found[cid] = stored.get(cid, AuthorizationStatus.PENDING)
    return found


def authorization_of(
    session: Session, adapter: Adapter | None, connection_id: str
) -> AuthorizationStatus | None:
    """One connection's grant status for validation (see :func:`authorizations`)."""
    return authorizations(session, {connection_id: adapter})[connection_id]


def drift_reasons(validation: ValidationResult) -> list[str]:
    """One reason per validation error: the stored settings no longer satisfy the adapter."""
    return [f"Configuration needs attention: {e.field}: {e.message}" for e in validation.errors]


def effective_health(
    state: str, validation: ValidationResult | None, sync_health: str, sync_reasons: Sequence[str]
) -> tuple[str, list[str]]:
    """Health shown for a connection: validation drift and the last sync's verdict, worst first.

    ``validation`` is ``None`` when the adapter is not installed any more.
    """
    if state != ConnectionState.ENABLED:
        return Health.UNKNOWN.value, []
    health, reasons = Health(sync_health), list(sync_reasons)
    if validation is None:
        return Health.DEGRADED.value, [NOT_INSTALLED_REASON]
    if validation.errors:
        drift = drift_reasons(validation)
        if _HEALTH_ORDER[health] < _HEALTH_ORDER[Health.DEGRADED]:
            health = Health.DEGRADED
        reasons = drift + reasons
    return health.value, reasons


#: Added to a connection's reasons when its settings changed after a sync found a problem.
RECHECK_REASON = "Settings changed since this was found; the next sync checks them again."


def recheck_reasons(sync_health: str, reasons: Sequence[str]) -> list[str]:
    """The last sync's reasons after an edit of settings or credentials: the verdict is kept
    (not reset to ``unknown``) until the sync the edit queued judges the new values."""
    if sync_health in (Health.UNKNOWN, Health.HEALTHY) or RECHECK_REASON in reasons:
        return list(reasons)
    return [*reasons, RECHECK_REASON]
