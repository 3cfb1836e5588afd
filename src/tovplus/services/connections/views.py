"""The connection's outward views: the contract's ``Connection`` and what lists wrap around it.

These Pydantic models are the one description of the shape: services build them, the API
uses them as response models and the pages render them. Their class names are the
OpenAPI component names. A view is also readable as a mapping (``view["state"]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, cast, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from tovplus.db.models import Connection, Grant, IntegrationKey, IntegrationPrincipal, OAuthGrant
from tovplus.db.sql import one_of
from tovplus.db.states import ConnectionState
from tovplus.errors import FieldIssue, Forbidden
from tovplus.integrations.contract import Adapter, Health, ValidationResult
from tovplus.integrations.payloads import format_timestamp
from tovplus.integrations.redaction import public_config
from tovplus.runtime import Runtime
from tovplus.runtime.views import View
from tovplus.services import callbacks, credentials, oauth
from tovplus.services.activity import ActivityModel
from tovplus.services.auth import PRINCIPAL_TYPE, Caller, IntegrationCaller, subject_for
from tovplus.services.catalog import AdapterModel
from tovplus.services.health import effective_health, scope_of, validation_of, with_suspension

StateName = Literal["draft", "enabled", "disabled", "revoked"]
HealthName = Literal["unknown", "healthy", "degraded", "failing"]
ScopeName = Literal["platform", "occasion", "event"]
SyncStatus = Literal["succeeded", "failed"]
PrincipalType = Literal["integration_principal"]
if set(get_args(StateName)) != set(ConnectionState) or set(get_args(HealthName)) != set(Health):
    raise AssertionError("StateName and HealthName must list ConnectionState and Health")


class FieldIssueModel(View):
    field: str
    code: str
    message: str


class ValidationModel(View):
    errors: list[FieldIssueModel]
    warnings: list[FieldIssueModel]


class ScopeModel(View):
    type: ScopeName
    occasion_id: str | None
    event_id: str | None


class PrincipalModel(View):
    principal_type: PrincipalType
    subject_id: str
    key_id: str | None
    key_last_used_at: str | None


class GrantModel(View):
    subject_id: str
    scope: ScopeModel
    action_key: str


class CallbackRejectionsModel(View):
    """The connection's callbacks refused with 401 in the last hour, every one counted (whatever
    the rate-limited ``callback.rejected`` entries show): per reason, in all, and the latest."""

    window_seconds: int
    total: int
    by_reason: dict[str, int]
    last_rejected_at: str | None


AuthorizationName = Literal["pending", "authorized", "reconnect_required"]


class AuthorizationModel(View):
    """An ``oauth2`` connection's grant as the contract shows it (never a token)."""

    status: AuthorizationName
    scopes: list[str]
    expires_at: str | None


class ConnectionModel(View):
    """The contract's ``Connection`` object."""

    id: str
    occasion_id: str
    integration_key: str
    name: str
    #: The planner's own name for this connection (null when none was given).
    label: str | None = None
    state: StateName
    health: HealthName
    health_reasons: list[str]
    config: dict[str, Any]
    redacted_secrets: dict[str, str | None]
    validation: ValidationModel
    scope: ScopeModel
    action_keys: list[str]
    principal: PrincipalModel
    grants: list[GrantModel]
    sync_interval_seconds: int | None
    last_sync_at: str | None
    last_sync_status: SyncStatus | None
    created_at: str
    updated_at: str
    callback_rejections: CallbackRejectionsModel
    #: Set while an admin has suspended this adapter (the kill switch): nothing syncs, acts or calls back.
    suspended_at: str | None = None
    suspended_reason: str | None = None
    #: Null for ``api_key`` adapters; else where the grant at the partner stands.
    authorization: AuthorizationModel | None = None


class AdminSummary(View):
    """Counts over every connection an admin filter matches (not only the page)."""

    total: int
    by_state: dict[str, int]
    by_health: dict[str, int]
    failing: int
    #: Connections whose sync run is waiting to retry after a failed attempt (they are ``degraded``).
    retrying: int = 0


class OccasionOverview(View):
    """The planner's page data: the catalog, the occasion's connections, its recent activity."""

    catalog: list[AdapterModel]
    connections: list[ConnectionModel]
    activity: list[ActivityModel]


# --- building -----------------------------------------------------------------------------------


def _latest_keys(session: Session, ids: list[str]) -> dict[str, tuple[str, datetime | None]]:
    """``{connection id: (key id, last used)}``: the live key, else a revoked principal's newest."""
    # plain column rows, not ORM objects: a page of 50 connections has 200+ of these
    key_rows = session.execute(
        select(
            IntegrationPrincipal.connection_id,
            IntegrationKey.key_id,
            IntegrationKey.last_used_at,
            IntegrationKey.revoked_at,
        )
        .join(IntegrationKey, IntegrationKey.principal_id == IntegrationPrincipal.id)
        .where(one_of(IntegrationPrincipal.connection_id.expression, ids))
        .order_by(IntegrationKey.id)
    ).all()
    latest_key: dict[str, tuple[str, datetime | None]] = {}
    live: set[str] = set()
    for connection_id, row_key_id, row_last_used, revoked_at in key_rows:
        # the live key wins; a revoked principal shows its newest key (ids are time-ordered)
        if connection_id not in live:
            latest_key[connection_id] = (row_key_id, row_last_used)
            if revoked_at is None:
                live.add(connection_id)
    return latest_key


class _Scopes:
    """One shared :class:`ScopeModel` per distinct scope while a page of views is built."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str | None, str | None], ScopeModel] = {}

    def __call__(self, scope_type: str, occasion_id: str | None, event_id: str | None) -> ScopeModel:
        key = (scope_type, occasion_id, event_id)
        scope = self._seen.get(key)
        if scope is None:
            scope = ScopeModel(type=cast(ScopeName, scope_type), occasion_id=occasion_id, event_id=event_id)
            self._seen[key] = scope
        return scope


def _live_grants(session: Session, ids: list[str], scopes: _Scopes) -> dict[str, list[GrantModel]]:
    """``{subject id: [grant, …]}`` of the connections' principals, oldest first."""
    grant_rows = session.execute(
        select(
            Grant.subject_id,
            Grant.scope_type,
            Grant.scope_occasion_id,
            Grant.scope_event_id,
            Grant.action_key,
        )
        .where(
            one_of(Grant.subject_id.expression, [subject_for(i) for i in ids]),
            Grant.revoked_at.is_(None),
        )
        .order_by(Grant.id)
    ).all()
    grants: dict[str, list[GrantModel]] = {}
    for subject_id, scope_type, scope_occasion_id, scope_event_id, action_key in grant_rows:
        scope = scopes(scope_type, scope_occasion_id, scope_event_id)
        grants.setdefault(subject_id, []).append(
            GrantModel(subject_id=subject_id, scope=scope, action_key=action_key)
        )
    return grants


_NO_ISSUES = ValidationModel(errors=[], warnings=[])


def _validation_view(validation: ValidationResult | None) -> ValidationModel:
    if validation is None or not (validation.errors or validation.warnings):
        return _NO_ISSUES
    return ValidationModel(
        errors=[_issue(e) for e in validation.errors], warnings=[_issue(w) for w in validation.warnings]
    )


def _issue(issue: FieldIssue) -> FieldIssueModel:
    return FieldIssueModel(field=issue.field, code=issue.code, message=issue.message)


def _ordered(grants: list[GrantModel], order: list[str]) -> list[GrantModel]:
    """Grants in the connection's action-key order (unknown keys last, stable)."""
    return sorted(grants, key=lambda g: order.index(g.action_key) if g.action_key in order else len(order))


def build_views(
    rt: Runtime,
    session: Session,
    rows: Sequence[Connection],
    *,
    rejections: Mapping[str, callbacks.RejectionCounts] | None = None,
) -> list[ConnectionModel]:
    """The contract's ``Connection`` objects for ``rows``, with a fixed number of queries
    (``rejections``: the rows' callback rejections, when the caller has read them already)."""
    ids = [r.id for r in rows]
    if not ids:
        return []
    redacted = credentials.redacted_secrets(session, ids)
    latest_key = _latest_keys(session, ids)
    scopes = _Scopes()
    grants = _live_grants(session, ids, scopes)
    if rejections is None:
        rejections = callbacks.recent_rejections(session, ids)
    oauth_grants = _oauth_grants(rt, session, rows)
    return [
        _view(
            rt,
            row,
            redacted[row.id],
            latest_key,
            grants,
            scopes,
            rejections_view(rejections[row.id]),
            oauth_grants,
        )
        for row in rows
    ]


def _oauth_grants(rt: Runtime, session: Session, rows: Sequence[Connection]) -> dict[str, OAuthGrant | None]:
    """``{connection id: grant or None}`` of the rows whose adapter is ``oauth2`` (one query, if any)."""
    oauth_ids = [r.id for r in rows if (a := rt.registry.find(r.integration_key)) and a.oauth2]
    if not oauth_ids:
        return {}
    found = {
        g.connection_id: g
        for g in session.scalars(
            select(OAuthGrant).where(one_of(OAuthGrant.connection_id.expression, oauth_ids))
        )
    }
    return {cid: found.get(cid) for cid in oauth_ids}


def _authorization_view(grant: OAuthGrant | None, adapter: Adapter | None) -> AuthorizationModel | None:
    view = oauth.grant_view(grant, adapter)
    return AuthorizationModel.model_validate(view) if view is not None else None


_WINDOW_SECONDS = int(callbacks.REJECTION_WINDOW.total_seconds())
_NO_REJECTIONS = CallbackRejectionsModel(
    window_seconds=_WINDOW_SECONDS, total=0, by_reason={}, last_rejected_at=None
)


def rejections_view(counts: callbacks.RejectionCounts) -> CallbackRejectionsModel:
    """The view of a connection's callback rejections of the last hour (one shared view for none)."""
    if not counts.by_reason:
        return _NO_REJECTIONS
    return CallbackRejectionsModel(
        window_seconds=_WINDOW_SECONDS,
        total=counts.total,
        by_reason=dict(counts.by_reason),
        last_rejected_at=format_timestamp(counts.last_at) if counts.last_at else None,
    )


def _view(
    rt: Runtime,
    row: Connection,
    present: dict[str, str],
    latest_key: dict[str, tuple[str, datetime | None]],
    grants: dict[str, list[GrantModel]],
    scopes: _Scopes,
    rejections: CallbackRejectionsModel,
    oauth_grants: dict[str, OAuthGrant | None],
) -> ConnectionModel:
    adapter = rt.registry.find(row.integration_key)
    grant = oauth_grants.get(row.id)
    status = oauth.grant_status(grant) if row.id in oauth_grants else None
    validation = validation_of(rt, adapter, row, frozenset(present), status) if adapter else None
    health, reasons = effective_health(row.state, validation, row.sync_health, row.sync_health_reasons)
    health, reasons = with_suspension(row, health, reasons)  # the adapter kill switch (services.support)
    key_id, last_used = latest_key.get(row.id, (None, None))
    scope = scope_of(row)
    subject_id = subject_for(row.id)
    return ConnectionModel(
        id=row.id,
        occasion_id=row.occasion_id,
        integration_key=row.integration_key,
        name=adapter.name if adapter else row.integration_key,
        label=row.label,
        state=cast(StateName, row.state),
        health=cast(HealthName, health),
        health_reasons=reasons,
        config=public_config(adapter, row.config) if adapter else {},
        redacted_secrets={f.key: present.get(f.key) for f in adapter.secret_fields} if adapter else {},
        validation=_validation_view(validation),
        scope=scopes(scope.type.value, scope.occasion_id, scope.event_id),
        action_keys=list(row.action_keys),
        principal=PrincipalModel(
            principal_type=cast(PrincipalType, PRINCIPAL_TYPE),
            subject_id=subject_id,
            key_id=key_id,
            key_last_used_at=format_timestamp(last_used) if last_used else None,
        ),
        grants=_ordered(grants.get(subject_id, []), list(row.action_keys)),
        sync_interval_seconds=row.sync_interval_seconds,
        last_sync_at=format_timestamp(row.last_sync_at) if row.last_sync_at else None,
        last_sync_status=cast("SyncStatus | None", row.last_sync_status),
        created_at=format_timestamp(row.created_at),
        updated_at=format_timestamp(row.updated_at),
        callback_rejections=rejections,
        suspended_at=format_timestamp(row.suspended_at) if row.suspended_at else None,
        suspended_reason=row.suspended_reason,
        authorization=_authorization_view(grant, adapter),
    )


def view_of(rt: Runtime, session: Session, connection_id: str) -> ConnectionModel:
    """The view of one connection, read again (after a write)."""
    row = session.get(Connection, connection_id)
    assert row is not None
    return build_views(rt, session, [row])[0]


def whoami(caller: Caller) -> dict[str, Any]:
    """``GET /v1/integrations/me``: the calling integration principal (the API's ``MeOut``)."""
    if not isinstance(caller, IntegrationCaller):
        raise Forbidden("Only integration keys have an integration identity.")
    return {
        "principal_type": PRINCIPAL_TYPE,
        "subject_id": caller.subject_id,
        "connection_id": caller.connection_id,
        "key_id": caller.key_id,
        "scope": {
            "type": caller.scope.type.value,
            "occasion_id": caller.scope.occasion_id,
            "event_id": caller.scope.event_id,
        },
        "action_keys": sorted(caller.action_keys),
    }
