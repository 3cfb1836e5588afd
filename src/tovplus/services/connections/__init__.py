"""Connections: create, read, change state, edit, rotate, revoke.

Every write is a conditional update on the version it read, so two concurrent
requests cannot both win; a loser is retried once against the new state, where
it is judged again (and usually refused as an invalid transition).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import (
    Connection,
    Grant,
    IntegrationKey,
    IntegrationPrincipal,
    SyncedRecord,
)
from tovplus.db.sql import one_of
from tovplus.db.types import utcnow
from tovplus.errors import (
    Conflict,
    ConnectionRevoked,
    FieldIssue,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotFound,
    ValidationFailed,
)
from tovplus.integrations.contract import (
    Adapter,
    Health,
    Scope,
    ScopeType,
    ValidationContext,
    ValidationResult,
    check_secret_values,
    validate_connection,
)
from tovplus.integrations.payloads import format_timestamp
from tovplus.integrations.redaction import looks_redacted, public_config
from tovplus.runtime import Runtime
from tovplus.runtime.pagination import Page, page_of, paginate
from tovplus.services import activity, credentials
from tovplus.services import sync as syncs
from tovplus.services.auth import (
    MANAGE,
    Caller,
    IntegrationCaller,
    authorize,
    event_of_occasion,
    is_id,
    principals,
    require_admin,
)

STATES = ("draft", "enabled", "disabled", "revoked")
ALLOWED_TRANSITIONS = frozenset(
    {
        ("draft", "enabled"),
        ("enabled", "disabled"),
        ("disabled", "enabled"),
        ("draft", "revoked"),
        ("enabled", "revoked"),
        ("disabled", "revoked"),
    }
)
_HEALTH_ORDER = {Health.UNKNOWN: 0, Health.HEALTHY: 1, Health.DEGRADED: 2, Health.FAILING: 3}
T = TypeVar("T")


class StaleWrite(Exception):
    """Internal: the row changed between read and conditional update."""


@dataclass(frozen=True, slots=True)
class ScopeInput:
    type: str = "occasion"
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionCreate:
    integration_key: str
    config: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, Any] = field(default_factory=dict)
    scope: ScopeInput = ScopeInput()
    action_keys: Sequence[str] | None = None
    state: str = "draft"
    sync_interval_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class ConnectionPatch:
    state: str | None = None
    config: Mapping[str, Any] | None = None
    secrets: Mapping[str, Any] | None = None
    action_keys: Sequence[str] | None = None
    rotate_key: bool = False


@dataclass(frozen=True, slots=True)
class ConnectionResult:
    connection: dict[str, Any]
    issued_key: str | None = None


# --- helpers ------------------------------------------------------------------------------


def _retrying(fn: Callable[[], T], attempts: int = 3) -> T:
    for attempt in range(attempts):
        try:
            return fn()
        except StaleWrite:
            if attempt == attempts - 1:
                raise Conflict("The connection changed while this request ran; try again.") from None
    raise AssertionError("unreachable")


def _bad(field_name: str, code: str, message: str) -> InvalidInput:
    return InvalidInput(message, fields=[FieldIssue(field_name, code, message)])


_SAFE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_KIND = re.compile(r"[a-z][a-z0-9_.]{0,63}")


def _named(prefix: str, key: object) -> str:
    """``prefix.key`` for field paths in errors; odd keys are not echoed back."""
    return f"{prefix}.{key}" if isinstance(key, str) and _SAFE_NAME.fullmatch(key) else f"{prefix}.?"


def storable_text(value: str) -> bool:
    """True when ``value`` can be stored as text on every backend (no NUL, valid Unicode)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_config_input(
    adapter: Adapter, config: Mapping[str, Any], *, stored: Mapping[str, Any] | None = None
) -> None:
    """Check config input; ``null`` may also remove a stored key an older adapter version used."""
    known = {f.key for f in adapter.config_fields}
    for key, value in config.items():
        path = _named("config", key)
        if key not in known and not (value is None and stored is not None and key in stored):
            raise _bad(path, "unknown_field", f"{adapter.name} has no such setting.")
        if value is None:
            continue
        if not isinstance(value, str | int | float | bool):
            raise _bad(path, "invalid_type", f"{path} must be a single value, not a list or object.")
        if isinstance(value, float) and not math.isfinite(value):
            raise _bad(path, "invalid_type", f"{path} must be a finite number.")
        if isinstance(value, str) and not storable_text(value):
            raise _bad(path, "invalid_text", f"{path} contains characters that cannot be stored.")


def _check_secrets_input(
    adapter: Adapter,
    secrets: Mapping[str, Any],
    stored_redacted: Mapping[str, str],
    *,
    allow_private_urls: bool,
) -> dict[str, str | None]:
    """Turn input secrets into ``{key: new value | None (remove)}``; kept values are dropped.

    Error messages never repeat the value that was sent.
    """
    known = {f.key for f in adapter.secret_fields}
    changes: dict[str, str | None] = {}
    for key, value in secrets.items():
        path = _named("secrets", key)
        if key not in known and not (value is None and key in stored_redacted):
            raise _bad(path, "unknown_field", f"{adapter.name} has no such secret.")
        if value is None:
            if key in stored_redacted:
                changes[key] = None
            continue
        if not isinstance(value, str):
            raise _bad(path, "invalid_type", f"{path} must be a string.")
        if value == "":
            continue  # an empty secret input keeps what is stored
        if stored_redacted.get(key) == value:
            continue  # the redacted placeholder sent back: keep the stored secret
        if looks_redacted(value):
            raise _bad(
                path, "redacted_value", "This looks like a masked value; enter the real secret or omit it."
            )
        if not storable_text(value):
            raise _bad(path, "invalid_text", f"{path} contains characters that cannot be stored.")
        changes[key] = value
    issues = check_secret_values(
        adapter, {k: v for k, v in changes.items() if v is not None}, allow_private_urls=allow_private_urls
    )
    if issues:
        raise InvalidInput("Some secrets are not valid.", fields=issues)
    return changes


def _check_action_keys(adapter: Adapter, action_keys: Sequence[str] | None) -> list[str]:
    if action_keys is None:
        return list(adapter.action_keys)
    supported = list(adapter.action_keys)
    unknown = [i for i, k in enumerate(action_keys) if k not in supported]
    if unknown:
        message = f"{adapter.name} supports only: {', '.join(supported) or 'no action keys'}."
        raise InvalidInput(
            message, fields=[FieldIssue(f"action_keys.{i}", "unsupported", message) for i in unknown]
        )
    return sorted(set(action_keys), key=supported.index)


def _adapter(rt: Runtime, integration_key: str) -> Adapter:
    adapter = rt.registry.find(integration_key)
    if adapter is None:
        raise _bad("integration_key", "unknown", "There is no integration with that key; see the catalog.")
    return adapter


def _scope_of(row: Connection) -> Scope:
    scope_type = ScopeType(row.scope_type)
    return Scope(
        scope_type,
        None if scope_type is ScopeType.PLATFORM else row.occasion_id,
        row.scope_event_id if scope_type is ScopeType.EVENT else None,
    )


def validation_of(
    rt: Runtime, adapter: Adapter, row: Connection, secrets_present: frozenset[str]
) -> ValidationResult:
    return validate_connection(
        adapter,
        ValidationContext(
            config=row.config,
            secrets_present=secrets_present,
            scope=_scope_of(row),
            allow_private_urls=rt.settings.allow_private_urls,
        ),
    )


def effective_health(
    state: str, validation: ValidationResult | None, sync_health: str, sync_reasons: Sequence[str]
) -> tuple[str, list[str]]:
    """Health shown for a connection: validation drift and the last sync's verdict, worst first."""
    if state != "enabled":
        return Health.UNKNOWN.value, []
    health, reasons = Health(sync_health), list(sync_reasons)
    if validation is None:
        return Health.DEGRADED.value, ["This integration is not installed any more; revoke the connection."]
    if validation.errors:
        drift = [f"Configuration needs attention: {e.field}: {e.message}" for e in validation.errors]
        if _HEALTH_ORDER[health] < _HEALTH_ORDER[Health.DEGRADED]:
            health = Health.DEGRADED
        reasons = drift + reasons
    return health.value, reasons


def _secrets_present(session: Session, connection_id: str) -> dict[str, str]:
    return credentials.redacted_secrets(session, [connection_id])[connection_id]


def _load(session: Session, occasion_id: str, connection_id: str) -> Connection:
    row = session.get(Connection, connection_id) if is_id(connection_id) else None
    if row is None or row.occasion_id != occasion_id:
        raise NotFound("No such connection.")
    return row


def _principal(session: Session, connection_id: str) -> IntegrationPrincipal:
    principal = session.scalar(
        select(IntegrationPrincipal).where(IntegrationPrincipal.connection_id == connection_id)
    )
    assert principal is not None, "every connection has a principal"
    return principal


def _conditional_update(session: Session, row: Connection, values: Mapping[str, Any]) -> None:
    result = session.execute(
        update(Connection)
        .where(Connection.id == row.id, Connection.version == row.version)
        .values(**values, version=row.version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StaleWrite
    session.expire(row)


def _next_sync(adapter: Adapter, now: datetime) -> datetime | None:
    return now if adapter.supports_background_sync else None


# --- views --------------------------------------------------------------------------------


def build_views(rt: Runtime, session: Session, rows: Sequence[Connection]) -> list[dict[str, Any]]:
    """The contract's ``Connection`` objects for ``rows``, with a fixed number of queries."""
    ids = [r.id for r in rows]
    if not ids:
        return []
    redacted = credentials.redacted_secrets(session, ids)
    # plain column rows, not ORM objects: a page of 50 connections has 200+ of these
    key_rows = session.execute(
        select(
            IntegrationPrincipal.connection_id,
            IntegrationKey.key_id,
            IntegrationKey.last_used_at,
            IntegrationKey.revoked_at,
        )
        .join(IntegrationKey, IntegrationKey.principal_id == IntegrationPrincipal.id)
        .where(one_of(IntegrationPrincipal.connection_id, ids))
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
    grant_rows = session.execute(
        select(
            Grant.subject_id,
            Grant.scope_type,
            Grant.scope_occasion_id,
            Grant.scope_event_id,
            Grant.action_key,
        )
        .where(one_of(Grant.subject_id, [principals.subject_for(i) for i in ids]), Grant.revoked_at.is_(None))
        .order_by(Grant.id)
    ).all()
    grants: dict[str, list[dict[str, Any]]] = {}
    for subject_id, scope_type, scope_occasion_id, scope_event_id, action_key in grant_rows:
        grants.setdefault(subject_id, []).append(
            {
                "subject_id": subject_id,
                "scope": {"type": scope_type, "occasion_id": scope_occasion_id, "event_id": scope_event_id},
                "action_key": action_key,
            }
        )
    views: list[dict[str, Any]] = []
    for row in rows:
        adapter = rt.registry.find(row.integration_key)
        present = redacted[row.id]
        validation = validation_of(rt, adapter, row, frozenset(present)) if adapter else None
        health, reasons = effective_health(row.state, validation, row.sync_health, row.sync_health_reasons)
        key_id, last_used = latest_key.get(row.id, (None, None))
        order = list(row.action_keys)
        scope = _scope_of(row)
        views.append(
            {
                "id": row.id,
                "occasion_id": row.occasion_id,
                "integration_key": row.integration_key,
                "name": adapter.name if adapter else row.integration_key,
                "state": row.state,
                "health": health,
                "health_reasons": reasons,
                "config": public_config(adapter, row.config) if adapter else {},
                "redacted_secrets": {f.key: present.get(f.key) for f in adapter.secret_fields}
                if adapter
                else {},
                "validation": validation.as_dict() if validation else {"errors": [], "warnings": []},
                "scope": {
                    "type": scope.type.value,
                    "occasion_id": scope.occasion_id,
                    "event_id": scope.event_id,
                },
                "action_keys": list(row.action_keys),
                "principal": {
                    "principal_type": principals.PRINCIPAL_TYPE,
                    "subject_id": principals.subject_for(row.id),
                    "key_id": key_id,
                    "key_last_used_at": format_timestamp(last_used) if last_used else None,
                },
                "grants": sorted(
                    grants.get(principals.subject_for(row.id), []),
                    key=partial(_grant_rank, order),
                ),
                "sync_interval_seconds": row.sync_interval_seconds,
                "last_sync_at": format_timestamp(row.last_sync_at) if row.last_sync_at else None,
                "last_sync_status": row.last_sync_status,
                "created_at": format_timestamp(row.created_at),
                "updated_at": format_timestamp(row.updated_at),
            }
        )
    return views


def _grant_rank(order: list[str], grant: Mapping[str, Any]) -> int:
    key = grant["action_key"]
    return order.index(key) if key in order else len(order)


def _view(rt: Runtime, session: Session, connection_id: str) -> dict[str, Any]:
    row = session.get(Connection, connection_id)
    assert row is not None
    return build_views(rt, session, [row])[0]


# --- create ---------------------------------------------------------------------------------


def create_connection(
    rt: Runtime, caller: Caller, occasion_id: str, data: ConnectionCreate
) -> ConnectionResult:
    """Create a connection (draft or enabled), its principal, key and grants."""
    with rt.db.write() as session:
        authorize(session, caller, MANAGE, occasion_id)
        adapter = _adapter(rt, data.integration_key)
        if data.state not in ("draft", "enabled"):
            raise _bad("state", "invalid", "A new connection starts as draft or enabled.")
        _check_config_input(adapter, data.config)
        config = {k: v for k, v in data.config.items() if v is not None}
        secret_values = {
            k: v
            for k, v in _check_secrets_input(
                adapter, data.secrets, {}, allow_private_urls=rt.settings.allow_private_urls
            ).items()
            if v is not None
        }
        scope = _resolve_scope(session, caller, occasion_id, data.scope)
        action_keys = _check_action_keys(adapter, data.action_keys)
        now = utcnow()
        row = Connection(
            id=new_id("con"),
            occasion_id=occasion_id,
            integration_key=adapter.integration_key,
            state=data.state,
            health=Health.UNKNOWN.value,
            health_reasons=[],
            sync_health=Health.UNKNOWN.value,
            sync_health_reasons=[],
            config=config,
            scope_type=scope.type.value,
            scope_event_id=scope.event_id,
            action_keys=action_keys,
            sync_interval_seconds=data.sync_interval_seconds,
            next_sync_at=_next_sync(adapter, now) if data.state == "enabled" else None,
            created_by=caller.subject_id,
            created_at=now,
            updated_at=now,
        )
        validation = validation_of(rt, adapter, row, frozenset(secret_values))
        if data.state == "enabled" and validation.errors:
            raise ValidationFailed("Fix the validation errors before enabling.", fields=validation.errors)
        row.health, row.health_reasons = effective_health(row.state, validation, row.sync_health, [])
        session.add(row)
        session.flush()
        for key, value in secret_values.items():
            credentials.store_secret(session, rt.keyring, row.id, key, value)
        _principal_row, issued = principals.create_principal(
            session, row.id, scope, action_keys, caller.subject_id
        )
        common: dict[str, Any] = {
            "occasion_id": occasion_id,
            "connection_id": row.id,
            "integration_key": row.integration_key,
            "actor": caller.subject_id,
        }
        activity.record(
            session,
            kind="connection.created",
            summary=f"{adapter.name} connection created as {row.state}",
            details={
                "state": row.state,
                "scope": scope.type.value,
                "action_keys": action_keys,
                "key_id": issued.key_id,
                "fields_set": sorted(f"config.{k}" for k in config)
                + sorted(f"secrets.{k}" for k in secret_values),
                "validation_errors": [e.field for e in validation.errors],
            },
            **common,
        )
        if row.state == "enabled":
            activity.record(
                session, kind="connection.enabled", summary=f"{adapter.name} connection enabled", **common
            )
        session.flush()
        return ConnectionResult(_view(rt, session, row.id), issued.full_key)


def _resolve_scope(session: Session, caller: Caller, occasion_id: str, scope: ScopeInput) -> Scope:
    try:
        scope_type = ScopeType(scope.type)
    except ValueError:
        raise _bad("scope.type", "invalid", "scope.type must be platform, occasion or event.") from None
    if scope_type is ScopeType.PLATFORM:
        require_admin(caller)  # 403 for planners
    if scope_type is not ScopeType.EVENT and scope.event_id is not None:
        raise _bad("scope.event_id", "not_allowed", "scope.event_id goes only with an event scope.")
    if scope_type is ScopeType.PLATFORM:
        return Scope(ScopeType.PLATFORM)
    if scope_type is ScopeType.EVENT:
        if not scope.event_id:
            raise _bad("scope.event_id", "required", "An event scope needs scope.event_id.")
        if event_of_occasion(session, occasion_id, scope.event_id) is None:
            raise _bad("scope.event_id", "unknown_event", "scope.event_id is not an event of this occasion.")
        return Scope(ScopeType.EVENT, occasion_id, scope.event_id)
    return Scope(ScopeType.OCCASION, occasion_id)


# --- read -------------------------------------------------------------------------------------


def get_connection(rt: Runtime, caller: Caller, occasion_id: str, connection_id: str) -> dict[str, Any]:
    with rt.db.read() as session:
        authorize(session, caller, MANAGE, occasion_id)
        row = _load(session, occasion_id, connection_id)
        return build_views(rt, session, [row])[0]


def occasion_overview(rt: Runtime, caller: Caller, occasion_id: str) -> dict[str, Any]:
    """The planner's page data: catalog, the occasion's connections, recent activity."""
    with rt.db.read() as session:
        authorize(session, caller, MANAGE, occasion_id)
        rows = session.scalars(
            select(Connection).where(Connection.occasion_id == occasion_id).order_by(Connection.id)
        ).all()
        recent = activity.list_activity(session, occasion_id=occasion_id, limit=activity.PLANNER_RECENT)
        return {
            "catalog": [a.describe() for a in rt.registry],
            "connections": build_views(rt, session, rows),
            "activity": [activity.as_dict(a) for a in recent.items],
        }


def occasion_activity(
    rt: Runtime,
    caller: Caller,
    occasion_id: str,
    *,
    connection_id: str | None,
    limit: int | None,
    cursor: str | None,
) -> Page[dict[str, Any]]:
    with rt.db.read() as session:
        authorize(session, caller, MANAGE, occasion_id)
        if connection_id is not None:
            _load(session, occasion_id, connection_id)
        page = activity.list_activity(
            session, occasion_id=occasion_id, connection_id=connection_id, limit=limit, cursor=cursor
        )
        return Page([activity.as_dict(a) for a in page.items], page.next_cursor)


def list_records(
    rt: Runtime,
    caller: Caller,
    occasion_id: str,
    connection_id: str,
    *,
    limit: int | None,
    cursor: str | None,
) -> Page[dict[str, Any]]:
    with rt.db.read() as session:
        authorize(session, caller, MANAGE, occasion_id)
        _load(session, occasion_id, connection_id)
        query, size = paginate(
            select(SyncedRecord).where(SyncedRecord.connection_id == connection_id),
            SyncedRecord.id,
            limit=limit,
            cursor=cursor,
        )
        page = page_of(session.scalars(query).all(), size, lambda r: r.id)
        return Page(
            [
                {
                    "external_id": r.external_id,
                    "kind": r.kind,
                    "data": r.data,
                    "updated_at": format_timestamp(r.updated_at),
                }
                for r in page.items
            ],
            page.next_cursor,
        )


# --- patch ---------------------------------------------------------------------------------------


def update_connection(
    rt: Runtime, caller: Caller, occasion_id: str, connection_id: str, patch: ConnectionPatch
) -> ConnectionResult:
    """Apply a PATCH per the contract; see the module docstring for concurrency."""
    return _retrying(lambda: _update_once(rt, caller, occasion_id, connection_id, patch))


@dataclass(frozen=True, slots=True)
class _Edits:
    """A PATCH's edits, checked against the adapter and the stored values."""

    config: dict[str, Any]
    changed_config: list[str]
    secret_changes: dict[str, str | None]
    action_keys: list[str] | None

    @property
    def content_changed(self) -> bool:
        return bool(self.changed_config or self.secret_changes)


def _parse_edits(
    rt: Runtime, adapter: Adapter | None, row: Connection, stored: Mapping[str, str], patch: ConnectionPatch
) -> _Edits:
    """Check every input of a PATCH (422 for bad input) and work out what would change."""
    wants_edit = bool(patch.config) or bool(patch.secrets) or patch.action_keys is not None
    if adapter is None:
        if wants_edit:
            raise Conflict(
                "This integration is not installed any more; its connection can only be "
                "disabled, revoked or have its key rotated.",
                code="integration_unavailable",
            )
        return _Edits(dict(row.config), [], {}, None)
    new_config = dict(row.config)
    if patch.config:
        _check_config_input(adapter, patch.config, stored=row.config)
        for key, value in patch.config.items():
            if value is None:
                new_config.pop(key, None)
            else:
                new_config[key] = value
    changed_config = sorted(
        k
        for k in (patch.config or {})
        if (k in row.config, row.config.get(k)) != (k in new_config, new_config.get(k))
    )
    secret_changes = (
        _check_secrets_input(
            adapter, patch.secrets, stored, allow_private_urls=rt.settings.allow_private_urls
        )
        if patch.secrets
        else {}
    )
    action_keys = _check_action_keys(adapter, patch.action_keys) if patch.action_keys is not None else None
    if action_keys is not None and action_keys == list(row.action_keys):
        action_keys = None
    return _Edits(new_config, changed_config, secret_changes, action_keys)


def _update_once(
    rt: Runtime, caller: Caller, occasion_id: str, connection_id: str, patch: ConnectionPatch
) -> ConnectionResult:
    with rt.db.write() as session:
        authorize(session, caller, MANAGE, occasion_id)
        row = _load(session, occasion_id, connection_id)
        if row.scope_type == ScopeType.PLATFORM.value:
            require_admin(caller)  # its key reaches every occasion: planners may not touch it
        if row.state == "revoked":
            raise ConnectionRevoked("This connection is revoked; create a new one.")
        if patch.state is not None and patch.state not in STATES:
            raise _bad("state", "invalid", "state must be draft, enabled, disabled or revoked.")
        adapter = rt.registry.find(row.integration_key)
        stored = _secrets_present(session, row.id)
        edits = _parse_edits(rt, adapter, row, stored, patch)
        has_edits = edits.content_changed or edits.action_keys is not None or patch.rotate_key
        asks_for_edits = (
            bool(patch.config or patch.secrets) or patch.action_keys is not None or patch.rotate_key
        )
        target = patch.state or row.state
        if patch.state == row.state and not asks_for_edits:
            # a bare "go to the state you are in" is not a transition (so of two racing
            # identical requests exactly one wins); with edits it is just an edit
            raise InvalidTransition(f"The connection is already {row.state}.")
        if target != row.state and (row.state, target) not in ALLOWED_TRANSITIONS:
            raise InvalidTransition(f"A connection cannot go from {row.state} to {target}.")
        if target == "revoked":
            return _revoke(rt, session, caller, row, adapter)
        if not has_edits and target == row.state:
            return ConnectionResult(build_views(rt, session, [row])[0])  # nothing to do

        present = (set(stored) - {k for k, v in edits.secret_changes.items() if v is None}) | {
            k for k, v in edits.secret_changes.items() if v is not None
        }
        candidate = Connection(
            id=row.id,
            occasion_id=row.occasion_id,
            config=edits.config,
            scope_type=row.scope_type,
            scope_event_id=row.scope_event_id,
        )
        validation = validation_of(rt, adapter, candidate, frozenset(present)) if adapter else None
        if target == "enabled" and (row.state != "enabled" or edits.content_changed):
            errors = (
                validation.errors
                if validation is not None
                else (FieldIssue("integration_key", "not_installed", "This integration is not installed."),)
            )
            if errors:
                raise ValidationFailed(
                    "Fix the validation errors before enabling."
                    if row.state != "enabled"
                    else "This change would leave the enabled connection invalid; nothing was changed.",
                    fields=errors,
                )

        previous_state = row.state
        now = utcnow()
        sync_health, sync_reasons = row.sync_health, list(row.sync_health_reasons)
        values: dict[str, Any] = {"state": target, "updated_at": now}
        if edits.content_changed:
            # new settings or credentials: the last sync's verdict no longer applies
            sync_health, sync_reasons = Health.UNKNOWN.value, []
            values.update(config=edits.config, sync_health=sync_health, sync_health_reasons=sync_reasons)
        health, reasons = effective_health(target, validation, sync_health, sync_reasons)
        values.update(health=health, health_reasons=reasons)
        if edits.action_keys is not None:
            values["action_keys"] = edits.action_keys
        if target != "enabled":
            values["next_sync_at"] = None
        elif adapter is not None and (previous_state != "enabled" or edits.content_changed):
            values["next_sync_at"] = _next_sync(adapter, now)
        _conditional_update(session, row, values)

        name = adapter.name if adapter else row.integration_key
        common: dict[str, Any] = {
            "occasion_id": occasion_id,
            "connection_id": row.id,
            "integration_key": row.integration_key,
            "actor": caller.subject_id,
        }
        for key, value in edits.secret_changes.items():
            if value is None:
                credentials.delete_secret(session, row.id, key)
            else:
                credentials.store_secret(session, rt.keyring, row.id, key, value)
        principal = _principal(session, row.id)
        if edits.action_keys is not None:
            principals.set_grants(session, principal, edits.action_keys, caller.subject_id)
        if edits.content_changed or edits.action_keys is not None:
            activity.record(
                session,
                kind="connection.updated",
                summary=f"{name} connection updated",
                details={
                    "fields_changed": [f"config.{k}" for k in edits.changed_config]
                    + [f"secrets.{k}" for k in sorted(edits.secret_changes)],
                    "fields_removed": [f"config.{k}" for k in edits.changed_config if k not in edits.config]
                    + [f"secrets.{k}" for k, v in sorted(edits.secret_changes.items()) if v is None],
                    "action_keys": edits.action_keys,
                },
                **common,
            )
        if target != previous_state:
            activity.record(
                session,
                kind=f"connection.{target}",
                summary=f"{name} connection {target}",
                details={"from": previous_state},
                **common,
            )
        issued_key = None
        if patch.rotate_key:
            issued = principals.rotate_key(session, principal.id, now)
            issued_key = issued.full_key
            activity.record(
                session,
                kind="key.rotated",
                summary=f"{name} key rotated; the old key no longer works",
                details={"key_id": issued.key_id},
                **common,
            )
        session.flush()
        return ConnectionResult(_view(rt, session, row.id), issued_key)


def _revoke(
    rt: Runtime, session: Session, caller: Caller, row: Connection, adapter: Adapter | None
) -> ConnectionResult:
    now = utcnow()
    previous_state = row.state
    _conditional_update(
        session,
        row,
        {
            "state": "revoked",
            "revoked_at": now,
            "updated_at": now,
            "next_sync_at": None,
            "health": Health.UNKNOWN.value,
            "health_reasons": [],
        },
    )
    principal = _principal(session, row.id)
    principals.revoke_principal(session, principal, now)
    destroyed = credentials.destroy_secrets(session, row.id)
    name = adapter.name if adapter else row.integration_key
    activity.record(
        session,
        kind="connection.revoked",
        summary=f"{name} connection revoked; its key, grants and stored credentials are gone",
        details={"from": previous_state, "stored_values_destroyed": destroyed},
        occasion_id=row.occasion_id,
        connection_id=row.id,
        integration_key=row.integration_key,
        actor=caller.subject_id,
    )
    session.flush()
    return ConnectionResult(_view(rt, session, row.id))


# --- admin ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdminFilters:
    state: str | None = None
    health: str | None = None
    integration_key: str | None = None
    occasion_id: str | None = None


def admin_list(
    rt: Runtime, caller: Caller, filters: AdminFilters, *, limit: int | None, cursor: str | None
) -> tuple[Page[dict[str, Any]], dict[str, Any]]:
    """Every connection (newest first) matching ``filters``, and summary counts of that set."""
    require_admin(caller)
    if filters.state is not None and filters.state not in STATES:
        raise _bad("state", "invalid", "state must be draft, enabled, disabled or revoked.")
    if filters.health is not None and filters.health not in {h.value for h in Health}:
        raise _bad("health", "invalid", "health must be unknown, healthy, degraded or failing.")
    if filters.occasion_id is not None and not is_id(filters.occasion_id):
        raise _bad("occasion_id", "invalid", "occasion_id is not a valid id.")
    if filters.integration_key is not None and not _SAFE_NAME.fullmatch(filters.integration_key):
        raise _bad("integration_key", "invalid", "integration_key is not a valid integration key.")
    conditions = []
    if filters.state is not None:
        conditions.append(Connection.state == filters.state)
    if filters.health is not None:
        conditions.append(Connection.health == filters.health)
    if filters.integration_key is not None:
        conditions.append(Connection.integration_key == filters.integration_key)
    if filters.occasion_id is not None:
        conditions.append(Connection.occasion_id == filters.occasion_id)
    with rt.db.read() as session:
        query, size = paginate(
            select(Connection).where(*conditions),
            Connection.id,
            limit=limit,
            cursor=cursor,
            newest_first=True,
        )
        page = page_of(session.scalars(query).all(), size, lambda c: c.id)
        counts = session.execute(
            select(Connection.state, Connection.health, func.count())
            .where(*conditions)
            .group_by(Connection.state, Connection.health)
        ).all()
        by_state: dict[str, int] = dict.fromkeys(STATES, 0)
        by_health: dict[str, int] = {h.value: 0 for h in Health}
        for state, health, count in counts:
            by_state[state] = by_state.get(state, 0) + count
            by_health[health] = by_health.get(health, 0) + count
        summary = {
            "total": sum(by_state.values()),
            "by_state": by_state,
            "by_health": by_health,
            "failing": by_health.get(Health.FAILING.value, 0),
        }
        return Page(build_views(rt, session, page.items), page.next_cursor), summary


def admin_activity(
    rt: Runtime, caller: Caller, *, kind: str | None, limit: int | None, cursor: str | None
) -> Page[dict[str, Any]]:
    require_admin(caller)
    if kind is not None and not _KIND.fullmatch(kind):
        raise _bad("kind", "invalid", "kind looks like connection.enabled or sync.failed.")
    with rt.db.read() as session:
        page = activity.list_activity(session, kind=kind, limit=limit, cursor=cursor)
        return Page([activity.as_dict(a) for a in page.items], page.next_cursor)


# --- health upkeep -----------------------------------------------------------------------------


def refresh_health(rt: Runtime, *, batch_size: int = 500) -> int:
    """Recompute stored health of enabled connections (after an adapter upgrade). Returns changes.

    Each write is conditional on the version that was read, so a concurrent edit (which
    computes health itself) is never overwritten with a stale verdict.
    """
    changed = 0
    after = ""
    while True:
        with rt.db.write() as session:
            rows = session.scalars(
                select(Connection)
                .where(Connection.state == "enabled", Connection.id > after)
                .order_by(Connection.id)
                .limit(batch_size)
            ).all()
            if not rows:
                return changed
            redacted = credentials.redacted_secrets(session, [r.id for r in rows])
            for row in rows:
                adapter = rt.registry.find(row.integration_key)
                validation = validation_of(rt, adapter, row, frozenset(redacted[row.id])) if adapter else None
                health, reasons = effective_health(
                    row.state, validation, row.sync_health, row.sync_health_reasons
                )
                if health != row.health or reasons != row.health_reasons:
                    result = session.execute(
                        update(Connection)
                        .where(Connection.id == row.id, Connection.version == row.version)
                        .values(health=health, health_reasons=reasons)
                        .execution_options(synchronize_session=False)
                    )
                    changed += result.rowcount  # type: ignore[attr-defined]
            after = rows[-1].id


def request_sync(rt: Runtime, caller: Caller, occasion_id: str, connection_id: str) -> str:
    """``POST …/connections/{id}/sync``: queue a sync run (404 for ids that cannot exist)."""
    if not is_id(connection_id):
        with rt.db.read() as session:
            authorize(session, caller, MANAGE, occasion_id)
        raise NotFound("No such connection.")
    return syncs.request_sync(rt, caller, occasion_id, connection_id)


def whoami(caller: Caller) -> dict[str, Any]:
    """``GET /v1/integrations/me``: the calling integration principal."""
    if not isinstance(caller, IntegrationCaller):
        raise Forbidden("Only integration keys have an integration identity.")
    return {
        "principal_type": principals.PRINCIPAL_TYPE,
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
