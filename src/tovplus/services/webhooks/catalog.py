"""The event catalog: every webhook event type, what it means and the JSON Schema of its payload.

:data:`EVENT_TYPES` is derived from :data:`CATALOG`; :func:`tovplus.services.webhooks.emit_event`
refuses a type that is not here. Every payload is ``{"type", "id", "occurred_at", "data"}``;
``data`` always carries ``connection_id``, ``integration_key`` and ``occasion_id`` plus what the
type adds. Extra keys are allowed (``additionalProperties`` is not restricted), so a producer may
add a field without breaking receivers; renaming or removing one is a breaking change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict, Field

from tovplus.runtime.views import View

_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer", "minimum": 0}
_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
_HEALTH: dict[str, Any] = {"enum": ["unknown", "healthy", "degraded", "failing"]}
_STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
_STATE: dict[str, Any] = {"enum": ["draft", "enabled", "disabled", "revoked"]}


@dataclass(frozen=True, slots=True)
class EventType:
    """One event type: its name, a sentence for the docs, and the fields its ``data`` adds."""

    type: str
    description: str
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``webhook.test`` is about an endpoint, not a connection: those three keys are null there.
    about_connection: bool = True

    def schema(self) -> dict[str, Any]:
        """The JSON Schema (draft 2020-12) of a whole payload of this type."""
        ident = _STR if self.about_connection else {"type": ["string", "null"]}
        properties = {
            "connection_id": ident,
            "integration_key": ident,
            "occasion_id": _STR,
            **self.data,
        }
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.type,
            "type": "object",
            "required": ["type", "id", "occurred_at", "data"],
            "properties": {
                "type": {"const": self.type},
                "id": _STR,
                "occurred_at": _TIME,
                "data": {"type": "object", "required": list(properties), "properties": properties},
            },
        }


def _lifecycle(state: str, what: str) -> EventType:
    return EventType(
        f"integration.connection_{state}",
        f"A connection was {what}. `data.state` is its state now.",
        {"state": _STATE},
    )


#: Every event type, in the order the docs list them.
CATALOG: tuple[EventType, ...] = (
    EventType(
        "integration.sync_completed",
        "A sync run of a connection finished (`data.status` succeeded or failed).",
        {"status": _STR, "last_sync_at": _TIME},
    ),
    EventType(
        "integration.sync_failed",
        "A sync run of a connection failed for good (after its retries).",
        {"status": _STR, "last_sync_at": _TIME},
    ),
    _lifecycle("created", "created (as a draft or enabled)"),
    _lifecycle("enabled", "enabled: it syncs and accepts callbacks"),
    _lifecycle("disabled", "disabled: it neither syncs nor accepts callbacks until enabled again"),
    _lifecycle("revoked", "revoked: its key, grants and stored credentials are gone for good"),
    EventType(
        "integration.health_changed",
        "A connection's health changed, e.g. to `failing` after its last retry or back to `healthy`.",
        {"health": _HEALTH, "previous_health": _HEALTH, "health_reasons": _STRINGS},
    ),
    EventType(
        "integration.records_changed",
        "A sync run stored or deleted records of a connection.",
        {"upserted": _INT, "deleted": _INT, "kinds": _STRINGS, "sync_run_id": _STR},
    ),
    EventType(
        "integration.action_completed",
        "An action run (the platform pushing to the partner) succeeded.",
        {
            "action_run_id": _STR,
            "action_key": _STR,
            "attempts": _INT,
            "summary": {"type": ["string", "null"]},
        },
    ),
    EventType(
        "integration.action_failed",
        "An action run failed for good (after its retries).",
        {"action_run_id": _STR, "action_key": _STR, "attempts": _INT, "error": _STR},
    ),
    EventType(
        "webhook.test",
        "A test event sent to one endpoint on request (`POST …/webhook-endpoints/{id}/test`).",
        {"endpoint_id": _STR},
        about_connection=False,
    ),
)

EVENT_TYPES: tuple[str, ...] = tuple(e.type for e in CATALOG)
_BY_TYPE = {e.type: e for e in CATALOG}


def event_type(name: str) -> EventType | None:
    """The catalog entry of ``name``, if there is one."""
    return _BY_TYPE.get(name)


class EventTypeModel(View):
    """An event type as ``GET /v1/webhooks/event-types`` lists it (``schema`` on the wire)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    type: str
    description: str
    payload_schema: dict[str, Any] = Field(alias="schema")


def event_type_views() -> list[EventTypeModel]:
    """The catalog as the API lists it."""
    return [
        EventTypeModel.model_validate({"type": e.type, "description": e.description, "schema": e.schema()})
        for e in CATALOG
    ]
