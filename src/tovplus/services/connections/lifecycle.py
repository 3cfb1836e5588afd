"""Creating a connection, changing its state or settings, rotating its key, revoking it.

Every write is a conditional update on the version it read (:mod:`.store`), so two
concurrent requests cannot both win; a loser is retried once against the new state, where
it is judged again (and usually refused as an invalid transition).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import Connection
from tovplus.db.states import ConnectionState
from tovplus.db.types import utcnow
from tovplus.errors import ConnectionRevoked, FieldIssue, InvalidTransition, ValidationFailed
from tovplus.integrations.contract import Adapter, Health, Scope, ScopeType, ValidationResult
from tovplus.runtime import Runtime
from tovplus.services import activity, callbacks, credentials, health, oauth
from tovplus.services.auth import (
    MANAGE,
    Caller,
    authorize,
    create_principal,
    require_admin,
    revoke_principal,
    rotate_key,
    set_grants,
)
from tovplus.services.connections import events, store
from tovplus.services.connections.inputs import (
    ConnectionCreate,
    ConnectionPatch,
    Edits,
    adapter_for,
    bad_input,
    check_action_keys,
    check_config_input,
    check_secrets_input,
    check_state,
    parse_edits,
    resolve_scope,
)
from tovplus.services.connections.labels import check_label
from tovplus.services.connections.views import ConnectionModel, build_views, view_of
from tovplus.services.health import authorization_of, effective_health, validation_of

_S = ConnectionState
ALLOWED_TRANSITIONS: frozenset[tuple[ConnectionState, ConnectionState]] = frozenset(
    {
        (_S.DRAFT, _S.ENABLED),
        (_S.ENABLED, _S.DISABLED),
        (_S.DISABLED, _S.ENABLED),
        (_S.DRAFT, _S.REVOKED),
        (_S.ENABLED, _S.REVOKED),
        (_S.DISABLED, _S.REVOKED),
    }
)


@dataclass(frozen=True, slots=True)
class ConnectionResult:
    """A connection after a write, and its new key when one was issued (shown this once), with
    the key's callback signing secret when the adapter's partner signs callbacks."""

    connection: ConnectionModel
    issued_key: str | None = None
    callback_signing_secret: str | None = None


def _common(row: Connection, caller: Caller) -> dict[str, Any]:
    """The activity fields every entry about ``row`` carries."""
    return {
        "occasion_id": row.occasion_id,
        "connection_id": row.id,
        "integration_key": row.integration_key,
        "actor": caller.subject_id,
    }


# --- create ---------------------------------------------------------------------------------


def create_connection(
    rt: Runtime, caller: Caller, occasion_id: str, data: ConnectionCreate
) -> ConnectionResult:
    """Create a connection (draft or enabled), its principal, key and grants."""
    with rt.db.write() as session:
        authorize(session, caller, MANAGE, occasion_id)
        adapter = adapter_for(rt, data.integration_key)
        if data.state not in (ConnectionState.DRAFT, ConnectionState.ENABLED):
            raise bad_input("state", "invalid", "A new connection starts as draft or enabled.")
        check_config_input(adapter, data.config)
        config = {k: v for k, v in data.config.items() if v is not None}
        secret_values = {
            k: v
            for k, v in check_secrets_input(
                adapter, data.secrets, {}, allow_private_urls=rt.settings.allow_private_urls
            ).items()
            if v is not None
        }
        scope = resolve_scope(session, caller, occasion_id, data.scope)
        action_keys = check_action_keys(adapter, data.action_keys, scope.type)
        row = _new_row(caller, occasion_id, adapter, data, config, scope, action_keys)
        validation = validation_of(rt, adapter, row, frozenset(secret_values))
        if data.state == ConnectionState.ENABLED and validation.errors:
            raise ValidationFailed("Fix the validation errors before enabling.", fields=validation.errors)
        row.health, row.health_reasons = effective_health(row.state, validation, row.sync_health, [])
        session.add(row)
        session.flush()
        for key, value in secret_values.items():
            credentials.store_secret(session, rt.keyring, row.id, key, value)
        _principal_row, issued = create_principal(session, row.id, scope, action_keys, caller.subject_id)
        signing_secret = _signing_secret_for(rt, session, adapter, row.id, issued.key_id)
        details = {
            "state": row.state,
            "scope": scope.type.value,
            "action_keys": action_keys,
            "key_id": issued.key_id,
            "fields_set": sorted(f"config.{k}" for k in config)
            + sorted(f"secrets.{k}" for k in secret_values),
            "validation_errors": [e.field for e in validation.errors],
        }
        _record_created(session, caller, row, adapter, details)
        events.connection_created(rt, session, row)
        session.flush()
        return ConnectionResult(view_of(rt, session, row.id), issued.full_key, signing_secret)


def _signing_secret_for(
    rt: Runtime, session: Session, adapter: Adapter | None, connection_id: str, key_id: str
) -> str | None:
    """A callback signing secret for the new key, when the adapter's partner signs callbacks."""
    if not callbacks.signs_callbacks(adapter):
        return None
    return callbacks.issue_signing_secret(session, rt.keyring, connection_id, key_id)


def _new_row(
    caller: Caller,
    occasion_id: str,
    adapter: Adapter,
    data: ConnectionCreate,
    config: dict[str, Any],
    scope: Scope,
    action_keys: list[str],
) -> Connection:
    now = utcnow()
    return Connection(
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
        label=check_label(data.label),
        next_sync_at=store.next_sync(adapter, now) if data.state == ConnectionState.ENABLED else None,
        created_by=caller.subject_id,
        created_at=now,
        updated_at=now,
    )


def _record_created(
    session: Session, caller: Caller, row: Connection, adapter: Adapter, details: dict[str, Any]
) -> None:
    common = _common(row, caller)
    activity.record(
        session,
        kind="connection.created",
        summary=f"{adapter.name} connection created as {row.state}",
        details=details,
        **common,
    )
    if row.state == ConnectionState.ENABLED:
        activity.record(
            session, kind="connection.enabled", summary=f"{adapter.name} connection enabled", **common
        )


# --- patch ---------------------------------------------------------------------------------------


def update_connection(
    rt: Runtime, caller: Caller, occasion_id: str, connection_id: str, patch: ConnectionPatch
) -> ConnectionResult:
    """Apply a PATCH per the contract; see the module docstring for concurrency."""
    return store.retrying(lambda: _update_once(rt, caller, occasion_id, connection_id, patch))


def _target(row: Connection, patch: ConnectionPatch) -> str:
    """The state a PATCH moves to (409 for a transition the lifecycle does not allow)."""
    asks_for_edits = (
        bool(patch.config or patch.secrets)
        or patch.action_keys is not None
        or patch.rotate_key
        or patch.label is not None
    )
    target = patch.state or row.state
    if patch.state == row.state and not asks_for_edits:
        # a bare "go to the state you are in" is not a transition (so of two racing
        # identical requests exactly one wins); with edits it is just an edit
        raise InvalidTransition(f"The connection is already {row.state}.")
    if target != row.state and (row.state, target) not in ALLOWED_TRANSITIONS:
        raise InvalidTransition(f"A connection cannot go from {row.state} to {target}.")
    return target


def _update_once(
    rt: Runtime, caller: Caller, occasion_id: str, connection_id: str, patch: ConnectionPatch
) -> ConnectionResult:
    with rt.db.write() as session:
        authorize(session, caller, MANAGE, occasion_id)
        row = store.load_connection(session, occasion_id, connection_id)
        if row.scope_type == ScopeType.PLATFORM.value:
            require_admin(caller)  # its key reaches every occasion: planners may not touch it
        if row.state == ConnectionState.REVOKED:
            raise ConnectionRevoked("This connection is revoked; create a new one.")
        check_state(patch.state)
        adapter = rt.registry.find(row.integration_key)
        stored = store.secrets_present(session, row.id)
        edits = parse_edits(rt, adapter, row, stored, patch)
        has_edits = (
            edits.content_changed or edits.action_keys is not None or patch.rotate_key or edits.label_changed
        )
        target = _target(row, patch)
        if target == ConnectionState.REVOKED:
            return _revoke(rt, session, caller, row, adapter)
        if not has_edits and target == row.state:
            return ConnectionResult(build_views(rt, session, [row])[0])  # nothing to do
        validation = _judge(rt, session, adapter, row, stored, edits, target)
        plan = _Plan(row, adapter, edits, target, row.state, patch.rotate_key, utcnow())
        _write(session, plan, validation)
        issued_key, signing_secret = _after_write(rt, session, caller, plan)
        session.flush()
        return ConnectionResult(view_of(rt, session, row.id), issued_key, signing_secret)


def _judge(
    rt: Runtime,
    session: Session,
    adapter: Adapter | None,
    row: Connection,
    stored: dict[str, str],
    edits: Edits,
    target: str,
) -> ValidationResult | None:
    """Validate the connection as it would be; 409 when that leaves an enabled one invalid."""
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
    validation = (
        validation_of(rt, adapter, candidate, frozenset(present), authorization_of(session, adapter, row.id))
        if adapter
        else None
    )
    if target == ConnectionState.ENABLED and (row.state != ConnectionState.ENABLED or edits.content_changed):
        errors = (
            validation.errors
            if validation is not None
            else (FieldIssue("integration_key", "not_installed", "This integration is not installed."),)
        )
        if errors:
            raise ValidationFailed(
                "Fix the validation errors before enabling."
                if row.state != ConnectionState.ENABLED
                else "This change would leave the enabled connection invalid; nothing was changed.",
                fields=errors,
            )
    return validation


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one PATCH does to one connection, decided before anything is written."""

    row: Connection
    adapter: Adapter | None
    edits: Edits
    target: str
    previous_state: str
    rotate_key: bool
    now: datetime


def _write(session: Session, plan: _Plan, validation: ValidationResult | None) -> None:
    """The conditional update of the connection row itself."""
    row, adapter, edits, target, now = plan.row, plan.adapter, plan.edits, plan.target, plan.now
    sync_health, sync_reasons = row.sync_health, list(row.sync_health_reasons)
    values: dict[str, Any] = {"state": target, "updated_at": now}
    if edits.content_changed:
        # new settings or credentials: the last verdict stays until the sync queued now judges them
        sync_reasons = health.recheck_reasons(sync_health, sync_reasons)
        values.update(config=edits.config, sync_health_reasons=sync_reasons)
    shown, reasons = effective_health(target, validation, sync_health, sync_reasons)
    values.update(health=shown, health_reasons=reasons)
    if edits.action_keys is not None:
        values["action_keys"] = edits.action_keys
    if edits.label_changed:
        values["label"] = edits.label
    if target != ConnectionState.ENABLED:
        values["next_sync_at"] = None
    elif adapter is not None and (row.state != ConnectionState.ENABLED or edits.content_changed):
        values["next_sync_at"] = store.next_sync(adapter, now)
    # outbox rows go out with the leader's next tick (requeue_due_deliveries)
    health.health_changed(session, row, previous=row.health, health=shown, reasons=reasons)
    store.conditional_update(session, row, values)


def _after_write(rt: Runtime, session: Session, caller: Caller, plan: _Plan) -> tuple[str | None, str | None]:
    """Secrets, grants, the activity entries and a rotated key; the new key and signing secret, if any."""
    row, edits = plan.row, plan.edits
    name = plan.adapter.name if plan.adapter else row.integration_key
    common = _common(row, caller)
    for key, value in edits.secret_changes.items():
        if value is None:
            credentials.delete_secret(session, row.id, key)
        else:
            credentials.store_secret(session, rt.keyring, row.id, key, value)
    principal = store.principal_of(session, row.id)
    if edits.action_keys is not None:
        set_grants(session, principal, edits.action_keys, caller.subject_id)
    if edits.content_changed or edits.action_keys is not None or edits.label_changed:
        activity.record(
            session,
            kind="connection.updated",
            summary=f"{name} connection updated",
            details={
                "fields_changed": [f"config.{k}" for k in edits.changed_config]
                + [f"secrets.{k}" for k in sorted(edits.secret_changes)]
                + (["label"] if edits.label_changed else []),
                "fields_removed": [f"config.{k}" for k in edits.changed_config if k not in edits.config]
                + [f"secrets.{k}" for k, v in sorted(edits.secret_changes.items()) if v is None],
                "action_keys": edits.action_keys,
            },
            **common,
        )
    if plan.target != plan.previous_state:
        events.state_changed(rt, session, row, plan.target)
        activity.record(
            session,
            kind=f"connection.{plan.target}",
            summary=f"{name} connection {plan.target}",
            details={"from": plan.previous_state},
            **common,
        )
    if not plan.rotate_key:
        return None, None
    issued = rotate_key(session, principal.id, plan.now)
    callbacks.destroy_revoked_signing_secrets(session, principal.id)
    signing_secret = _signing_secret_for(rt, session, plan.adapter, row.id, issued.key_id)
    activity.record(
        session,
        kind="key.rotated",
        summary=f"{name} key rotated; the old key no longer works",
        details={"key_id": issued.key_id, "callback_signing_secret_issued": signing_secret is not None},
        **common,
    )
    return issued.full_key, signing_secret


# --- revoke --------------------------------------------------------------------------------------


def _revoke(
    rt: Runtime, session: Session, caller: Caller, row: Connection, adapter: Adapter | None
) -> ConnectionResult:
    now = utcnow()
    previous_state = row.state
    store.conditional_update(
        session,
        row,
        {
            "state": ConnectionState.REVOKED.value,
            "revoked_at": now,
            "updated_at": now,
            "next_sync_at": None,
            "health": Health.UNKNOWN.value,
            "health_reasons": [],
        },
    )
    principal = store.principal_of(session, row.id)
    revoke_principal(session, principal, now)
    destroyed = credentials.destroy_secrets(session, row.id)
    destroyed += callbacks.destroy_revoked_signing_secrets(session, principal.id)
    destroyed += oauth.destroy_grant(session, row.id)
    name = adapter.name if adapter else row.integration_key
    activity.record(
        session,
        kind="connection.revoked",
        summary=f"{name} connection revoked; its key, grants and stored credentials are gone",
        details={"from": previous_state, "stored_values_destroyed": destroyed},
        **_common(row, caller),
    )
    events.state_changed(rt, session, row, ConnectionState.REVOKED)
    session.flush()
    return ConnectionResult(view_of(rt, session, row.id))
