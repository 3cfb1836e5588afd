"""Checks of what a planner sends to create or edit a connection (422 for bad input).

Error messages never repeat a secret value, and odd keys are not echoed back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from tovplus.db.models import Connection
from tovplus.db.states import ConnectionState
from tovplus.errors import Conflict, FieldIssue, InvalidInput
from tovplus.integrations.contract import Adapter, Scope, ScopeType, check_secret_values
from tovplus.integrations.fields import MAX_VALUE_LENGTH
from tovplus.integrations.redaction import looks_redacted
from tovplus.runtime import Runtime
from tovplus.services.auth import Caller, event_of_occasion, require_admin, scope_allows
from tovplus.services.connections.labels import check_label

#: An integration key or a field key.
SAFE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
#: An activity kind, e.g. ``connection.enabled``.
KIND = re.compile(r"[a-z][a-z0-9_.]{0,63}")
#: Every connection state, in lifecycle order.
STATES: tuple[ConnectionState, ...] = tuple(ConnectionState)


@dataclass(frozen=True, slots=True)
class ScopeInput:
    """Where a new connection is installed: ``platform``, ``occasion`` or ``event`` (with its id)."""

    type: str = ScopeType.OCCASION.value
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionCreate:
    """A new connection, as the planner asked for it (checked by ``create_connection``)."""

    integration_key: str
    config: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, Any] = field(default_factory=dict)
    scope: ScopeInput = ScopeInput()
    action_keys: Sequence[str] | None = None
    state: str = ConnectionState.DRAFT.value
    sync_interval_seconds: int | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionPatch:
    """A PATCH: a target state and/or edits; ``None`` leaves a part as it is."""

    state: str | None = None
    config: Mapping[str, Any] | None = None
    secrets: Mapping[str, Any] | None = None
    action_keys: Sequence[str] | None = None
    rotate_key: bool = False
    #: ``None`` leaves the label as it is; ``""`` removes it.
    label: str | None = None


def bad_input(field_name: str, code: str, message: str) -> InvalidInput:
    """A 422 about one field."""
    return InvalidInput(message, fields=[FieldIssue(field_name, code, message)])


def _named(prefix: str, key: object) -> str:
    """``prefix.key`` for field paths in errors; odd keys are not echoed back."""
    return f"{prefix}.{key}" if isinstance(key, str) and SAFE_NAME.fullmatch(key) else f"{prefix}.?"


def storable_text(value: str) -> bool:
    """True when ``value`` can be stored as text on every backend (no NUL, valid Unicode)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_state(state: str | None) -> None:
    """422 unless ``state`` is ``None`` or a connection state."""
    if state is not None and state not in STATES:
        raise bad_input("state", "invalid", "state must be draft, enabled, disabled or revoked.")


def adapter_for(rt: Runtime, integration_key: str) -> Adapter:
    """The installed adapter for ``integration_key`` (422 for an unknown key)."""
    adapter = rt.registry.find(integration_key)
    if adapter is None:
        raise bad_input(
            "integration_key", "unknown", "There is no integration with that key; see the catalog."
        )
    return adapter


def check_config_input(
    adapter: Adapter, config: Mapping[str, Any], *, stored: Mapping[str, Any] | None = None
) -> None:
    """Check config input; ``null`` may also remove a stored key an older adapter version used.

    Text longer than :data:`MAX_VALUE_LENGTH` (what no field may hold) is refused here, with the
    field's own ``too_long`` error, instead of being stored and listed: as secrets are.
    """
    declared = {f.key: f for f in adapter.config_fields}
    for key, value in config.items():
        path = _named("config", key)
        if key not in declared and not (value is None and stored is not None and key in stored):
            raise bad_input(path, "unknown_field", f"{adapter.name} has no such setting.")
        if value is None:
            continue
        if not isinstance(value, str | int | float | bool):
            raise bad_input(path, "invalid_type", f"{path} must be a single value, not a list or object.")
        if isinstance(value, float) and not math.isfinite(value):
            raise bad_input(path, "invalid_type", f"{path} must be a finite number.")
        if isinstance(value, str) and not storable_text(value):
            raise bad_input(path, "invalid_text", f"{path} contains characters that cannot be stored.")
        if isinstance(value, str) and len(value) > MAX_VALUE_LENGTH:
            # the declared field's check looks at the length first: its too_long, word for word
            issue = declared[key].check(value, path, allow_private_urls=True) or FieldIssue(
                path, "too_long", f"{path} must be at most {MAX_VALUE_LENGTH} characters."
            )
            raise InvalidInput("Some settings are not valid.", fields=[issue])


def check_secrets_input(
    adapter: Adapter,
    secrets: Mapping[str, Any],
    stored_redacted: Mapping[str, str],
    *,
    allow_private_urls: bool,
) -> dict[str, str | None]:
    """Turn input secrets into ``{key: new value | None (remove)}``; kept values are dropped.

    Error messages never repeat the value that was sent.
    """
    if adapter.oauth2 is not None and any(v not in (None, "") for v in secrets.values()):
        raise bad_input(
            "secrets",
            "not_allowed",
            f"{adapter.name} uses OAuth2: grant access at {adapter.name} instead of typing a secret.",
        )
    known = {f.key for f in adapter.secret_fields}
    changes: dict[str, str | None] = {}
    for key, value in secrets.items():
        path = _named("secrets", key)
        if key not in known and not (value is None and key in stored_redacted):
            raise bad_input(path, "unknown_field", f"{adapter.name} has no such secret.")
        if value is None:
            if key in stored_redacted:
                changes[key] = None
            continue
        if not isinstance(value, str):
            raise bad_input(path, "invalid_type", f"{path} must be a string.")
        if value == "":
            continue  # an empty secret input keeps what is stored
        if stored_redacted.get(key) == value:
            continue  # the redacted placeholder sent back: keep the stored secret
        if looks_redacted(value):
            raise bad_input(
                path, "redacted_value", "This looks like a masked value; enter the real secret or omit it."
            )
        if not storable_text(value):
            raise bad_input(path, "invalid_text", f"{path} contains characters that cannot be stored.")
        changes[key] = value
    issues = check_secret_values(
        adapter, {k: v for k, v in changes.items() if v is not None}, allow_private_urls=allow_private_urls
    )
    if issues:
        raise InvalidInput("Some secrets are not valid.", fields=issues)
    return changes


def check_action_keys(
    adapter: Adapter, action_keys: Sequence[str] | None, scope: ScopeType = ScopeType.OCCASION
) -> list[str]:
    """The action keys to grant, in the adapter's order (all it supports when ``None``).

    An event scope cannot hold an occasion-wide action (``guests.read``): asking for one is a
    422 on that key, and the default leaves it out.
    """
    if action_keys is None:
        return [k for k in adapter.action_keys if scope_allows(scope, k)]
    supported = list(adapter.action_keys)
    unknown = [i for i, k in enumerate(action_keys) if k not in supported]
    if unknown:
        message = f"{adapter.name} supports only: {', '.join(supported) or 'no action keys'}."
        raise InvalidInput(
            message, fields=[FieldIssue(f"action_keys.{i}", "unsupported", message) for i in unknown]
        )
    wide = [(i, k) for i, k in enumerate(action_keys) if not scope_allows(scope, k)]
    if wide:
        raise InvalidInput(
            "An event-scoped connection cannot be granted what covers the whole occasion.",
            fields=[
                FieldIssue(
                    f"action_keys.{i}",
                    "not_for_event_scope",
                    f"{k} covers the whole occasion (guests belong to the occasion, not to one event); "
                    "an event-scoped connection cannot be granted it.",
                )
                for i, k in wide
            ],
        )
    return sorted(set(action_keys), key=supported.index)


def resolve_scope(session: Session, caller: Caller, occasion_id: str, scope: ScopeInput) -> Scope:
    """The scope a new connection gets; a platform scope is for admins only (403)."""
    try:
        scope_type = ScopeType(scope.type)
    except ValueError:
        raise bad_input("scope.type", "invalid", "scope.type must be platform, occasion or event.") from None
    if scope_type is ScopeType.PLATFORM:
        require_admin(caller)  # 403 for planners
    if scope_type is not ScopeType.EVENT and scope.event_id is not None:
        raise bad_input("scope.event_id", "not_allowed", "scope.event_id goes only with an event scope.")
    if scope_type is ScopeType.PLATFORM:
        return Scope(ScopeType.PLATFORM)
    if scope_type is ScopeType.EVENT:
        if not scope.event_id:
            raise bad_input("scope.event_id", "required", "An event scope needs scope.event_id.")
        if event_of_occasion(session, occasion_id, scope.event_id) is None:
            raise bad_input(
                "scope.event_id", "unknown_event", "scope.event_id is not an event of this occasion."
            )
        return Scope(ScopeType.EVENT, occasion_id, scope.event_id)
    return Scope(ScopeType.OCCASION, occasion_id)


@dataclass(frozen=True, slots=True)
class Edits:
    """A PATCH's edits, checked against the adapter and the stored values."""

    config: dict[str, Any]
    changed_config: list[str]
    secret_changes: dict[str, str | None]
    action_keys: list[str] | None
    #: The new label when the PATCH changes it (``label_changed``); ``None`` removes it.
    label: str | None = None
    label_changed: bool = False

    @property
    def content_changed(self) -> bool:
        return bool(self.changed_config or self.secret_changes)


def parse_edits(
    rt: Runtime, adapter: Adapter | None, row: Connection, stored: Mapping[str, str], patch: ConnectionPatch
) -> Edits:
    """Check every input of a PATCH (422 for bad input) and work out what would change."""
    edits = _content_edits(rt, adapter, row, stored, patch)
    if patch.label is None:
        return edits
    label = check_label(patch.label)
    return replace(edits, label=label, label_changed=label != row.label)


def _content_edits(
    rt: Runtime, adapter: Adapter | None, row: Connection, stored: Mapping[str, str], patch: ConnectionPatch
) -> Edits:
    wants_edit = bool(patch.config) or bool(patch.secrets) or patch.action_keys is not None
    if adapter is None:
        if wants_edit:
            raise Conflict(
                "This integration is not installed any more; its connection can only be "
                "disabled, revoked or have its key rotated.",
                code="integration_unavailable",
            )
        return Edits(dict(row.config), [], {}, None)
    new_config = dict(row.config)
    if patch.config:
        check_config_input(adapter, patch.config, stored=row.config)
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
        check_secrets_input(adapter, patch.secrets, stored, allow_private_urls=rt.settings.allow_private_urls)
        if patch.secrets
        else {}
    )
    action_keys = (
        check_action_keys(adapter, patch.action_keys, ScopeType(row.scope_type))
        if patch.action_keys is not None
        else None
    )
    if action_keys is not None and action_keys == list(row.action_keys):
        action_keys = None
    return Edits(new_config, changed_config, secret_changes, action_keys)
