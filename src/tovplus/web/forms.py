"""Turning posted forms into the services' inputs, and field errors back into form errors.

Form inputs are named after the error paths the services use (``config.account_id``,
``secrets.api_key``, ``action_keys``, ``scope.type``), so a :class:`FieldIssue` lands
next to the input it is about. Values are passed on as typed, never shortened; the services
judge them, so a value over the limit (``integrations.fields.MAX_VALUE_LENGTH`` for config and
secrets) gets the same field error as through the API, and nothing is saved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from tovplus.db.states import ConnectionState
from tovplus.errors import FieldIssue
from tovplus.integrations.contract import ScopeType
from tovplus.services.connections import ConnectionCreate, ConnectionPatch, ScopeInput


@dataclass
class FormErrors:
    """Errors keyed by input name, plus those that belong to no input on the form."""

    by_field: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    message: str | None = None

    @classmethod
    def of(cls, message: str, issues: Iterable[FieldIssue], known: Iterable[str]) -> FormErrors:
        names = set(known)
        errors = cls(message=message)
        for issue in issues:
            name = issue.field if issue.field in names else None
            if name is None and "." in issue.field:
                head = issue.field.split(".", 1)[0]
                name = head if head in names else None
            if name is None:
                errors.general.append(issue.message)
            else:
                errors.by_field.setdefault(name, []).append(issue.message)
        return errors

    def __bool__(self) -> bool:
        return bool(self.by_field or self.general or self.message)


def text(form: FormData, name: str) -> str:
    """A text input's value as posted (``""`` when absent); the request body limit bounds it."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _typed(field_desc: Mapping[str, Any], raw: str) -> Any:
    """An integer field's text as an int when it is one (else the text, which the service refuses)."""
    if field_desc.get("type") == "integer":
        stripped = raw.strip()
        if stripped.lstrip("-").isdigit() and len(stripped) <= 18:
            return int(stripped)
        return stripped
    if field_desc.get("type") == "url":
        return raw.strip()
    return raw.strip()


def config_values(form: FormData, fields: Sequence[Mapping[str, Any]], *, patch: bool) -> dict[str, Any]:
    """Config from the form. Empty inputs are left out of a create and remove the value on an edit."""
    config: dict[str, Any] = {}
    for f in fields:
        name = f"config.{f['key']}"
        if f.get("type") == "boolean":
            if f"{name}.present" in form:
                config[f["key"]] = form.get(name) == "true"
            continue
        raw = text(form, name)
        if raw.strip() == "":
            if patch and name in form:
                config[f["key"]] = None
            continue
        config[f["key"]] = _typed(f, raw)
    return config


def secret_values(form: FormData, fields: Sequence[Mapping[str, Any]]) -> dict[str, str | None]:
    """Secrets from the form: empty keeps what is stored; "remove" (optional ones) deletes it."""
    secrets: dict[str, str | None] = {}
    for f in fields:
        name = f"secrets.{f['key']}"
        raw = text(form, name)
        if raw != "":
            secrets[f["key"]] = raw
        elif not f.get("required") and form.get(f"{name}.remove") == "yes":
            secrets[f["key"]] = None
    return secrets


def action_keys(form: FormData) -> list[str] | None:
    """The ticked action keys, or ``None`` when the form had no action key inputs."""
    if form.get("action_keys.present") != "1":
        return None
    return [v[:100] for v in form.getlist("action_keys") if isinstance(v, str)][:50]


def create_input(form: FormData, adapter: Mapping[str, Any]) -> ConnectionCreate:
    """The create form as the connections service's input."""
    scope_type = text(form, "scope.type") or ScopeType.OCCASION
    event_id = text(form, "scope.event_id") or None
    state = ConnectionState.ENABLED if text(form, "intent") == "enable" else ConnectionState.DRAFT
    return ConnectionCreate(
        integration_key=adapter["integration_key"],
        config=config_values(form, adapter["config_fields"], patch=False),
        secrets=secret_values(form, adapter["secret_fields"]),
        scope=ScopeInput(scope_type, event_id if scope_type == ScopeType.EVENT else None),
        action_keys=action_keys(form),
        state=state,
        label=text(form, "label"),
    )


def edit_input(form: FormData, adapter: Mapping[str, Any]) -> ConnectionPatch:
    """The settings form as the connections service's patch."""
    return ConnectionPatch(
        config=config_values(form, adapter["config_fields"], patch=True),
        secrets=secret_values(form, adapter["secret_fields"]),
        action_keys=action_keys(form),
        label=text(form, "label") if "label" in form else None,
    )


def input_names(adapter: Mapping[str, Any]) -> list[str]:
    """The names of the form's inputs for ``adapter``, where field errors can land."""
    return (
        [f"config.{f['key']}" for f in adapter["config_fields"]]
        + [f"secrets.{f['key']}" for f in adapter["secret_fields"]]
        + ["action_keys", "scope.type", "scope.event_id", "label"]
    )


def echoed(form: FormData, adapter: Mapping[str, Any]) -> dict[str, Any]:
    """What the planner typed, to put back into a re-shown form (never secrets)."""
    values: dict[str, Any] = {}
    for f in adapter["config_fields"]:
        name = f"config.{f['key']}"
        if f.get("type") == "boolean":
            values[name] = form.get(name) == "true"
        else:
            values[name] = text(form, name)
    keys = action_keys(form)
    values["action_keys"] = keys if keys is not None else list(adapter["action_keys"])
    values["scope.type"] = text(form, "scope.type") or "occasion"
    values["scope.event_id"] = text(form, "scope.event_id")
    values["label"] = text(form, "label")
    return values


def typed_secrets(form: FormData, adapter: Mapping[str, Any]) -> list[str]:
    """The input names of the secret fields the planner typed something into (not the values)."""
    return [f"secrets.{f['key']}" for f in adapter["secret_fields"] if text(form, f"secrets.{f['key']}")]
