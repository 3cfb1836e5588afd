"""Request bodies and response wrappers: what OpenAPI documents and what requests are parsed into.

The resources themselves (``ConnectionModel``, ``ActivityModel``, ``RecordModel``, …) are the
services' views; the wrappers here reference them.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from fastapi.security import HTTPBearer
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from tovplus.services.activity import ActivityModel
from tovplus.services.catalog import AdapterModel
from tovplus.services.connections import (
    AdminSummary,
    CheckOutcome,
    ConnectionModel,
    HealthName,
    ScopeModel,
    ScopeName,
    StateName,
)
from tovplus.services.occasions import EventModel, GuestModel, OccasionModel
from tovplus.services.records import RecordModel

#: Documents the bearer scheme in OpenAPI; the caller itself is resolved by ``api.deps``.
BEARER = HTTPBearer(
    auto_error=False,
    description="A user's token (planner or admin) or an integration principal's issued key.",
)


def _blank_is_none(value: Any) -> Any:
    """``?state=`` (an empty query value) means the parameter was not given."""
    return None if value == "" else value


_Blank = BeforeValidator(_blank_is_none)
# Constraints sit on the inner type, so a blank value turned into None never meets them.
LimitQuery = Annotated[
    Annotated[int, Field(ge=1, le=200)] | None,
    _Blank,
    Query(description="Page size: 1 to 200 (default 50)."),
]
CursorQuery = Annotated[
    Annotated[str, Field(max_length=200)] | None,
    _Blank,
    Query(description="`next_cursor` of the previous page."),
]
IdQuery = Annotated[Annotated[str, Field(max_length=64)] | None, _Blank, Query()]
StateQuery = Annotated[StateName | None, _Blank, Query()]
HealthQuery = Annotated[HealthName | None, _Blank, Query()]
IntegrationKeyQuery = Annotated[
    Annotated[str, Field(max_length=64, pattern=r"^[a-z][a-z0-9_]{0,63}$")] | None, _Blank, Query()
]
OccasionIdQuery = Annotated[
    Annotated[str, Field(max_length=40, pattern=r"^[A-Za-z0-9_-]{1,40}$")] | None, _Blank, Query()
]
KindQuery = Annotated[
    Annotated[str, Field(max_length=64, pattern=r"^[a-z][a-z0-9_.]{0,63}$")] | None,
    _Blank,
    Query(description="e.g. `connection.enabled`"),
]
SearchQuery = Annotated[
    Annotated[str, Field(max_length=100)] | None,
    _Blank,
    Query(description="Text to find: a connection id, label, partner account or planner email."),
]
OccasionSearchQuery = Annotated[
    Annotated[str, Field(max_length=100)] | None,
    _Blank,
    Query(description="Part of an occasion's name (or its id)."),
]
SortQuery = Annotated[
    Literal["newest", "oldest", "health", "last_sync", "integration"] | None,
    _Blank,
    Query(description="Order of the list (default `newest`); `health` is worst first."),
]
ShowQuery = Annotated[
    Literal["errors", "changes"] | None,
    _Blank,
    Query(description="`errors` (failed, rejected, retrying) or `changes` (lifecycle, settings, key)."),
]

IncludeDeletedQuery = Annotated[
    bool, Query(description="Also list records marked deleted (they carry `deleted_at`).")
]

#: Deepest nesting a request body may have.
MAX_DEPTH = 16


def _text_only(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def _as_utc(value: datetime) -> datetime:
    """RFC 3339 timestamps carry an offset; they are stored in UTC."""
    if value.tzinfo is None:
        raise ValueError("give a time with a UTC offset, e.g. 2027-06-12T18:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the timestamp is out of range") from None


#: A date or datetime that must arrive as an ISO string (never a number).
IsoDate = Annotated[date, BeforeValidator(_text_only)]
IsoDateTime = Annotated[datetime, BeforeValidator(_text_only), AfterValidator(_as_utc)]


def _storable(value: Any, path: str = "body", depth: int = 0) -> None:
    """Refuse what no backend can store: NUL characters, broken Unicode, NaN, deep nesting."""
    if depth > MAX_DEPTH:
        raise ValueError(f"{path}: the body is nested too deeply")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{path}: text must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{path}: text must be valid Unicode") from None
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: numbers must be finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key, f"{path} (a key)", depth + 1)
            name = key if isinstance(key, str) and key.isidentifier() and len(key) <= 64 else "?"
            _storable(item, name if path == "body" else f"{path}.{name}", depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _storable(item, f"{path}.{i}", depth + 1)


class Strict(BaseModel):
    """Request bodies: unknown fields are refused, strings stay strings, text is storable."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _only_storable_values(cls, data: Any) -> Any:
        _storable(data)
        return data


# --- requests -----------------------------------------------------------------------------


class ScopeIn(Strict):
    type: ScopeName = "occasion"
    event_id: StrictStr | None = Field(default=None, max_length=64)


class ConnectionCreateIn(Strict):
    integration_key: StrictStr = Field(max_length=64)
    config: dict[str, Any] = Field(default_factory=dict, max_length=100)
    secrets: dict[str, Any] = Field(default_factory=dict, max_length=100)
    scope: ScopeIn | None = None
    action_keys: list[StrictStr] | None = Field(default=None, max_length=50)
    state: Literal["draft", "enabled"] = "draft"
    sync_interval_seconds: StrictInt | None = Field(default=None, ge=60, le=86_400 * 7)
    label: StrictStr | None = Field(
        default=None, max_length=200, description="The planner's own name for it."
    )


class ConnectionPatchIn(Strict):
    state: StateName | None = None
    config: dict[str, Any] | None = Field(default=None, max_length=100)
    secrets: dict[str, Any] | None = Field(default=None, max_length=100)
    action_keys: list[StrictStr] | None = Field(default=None, max_length=50)
    rotate_key: StrictBool = False
    label: StrictStr | None = Field(default=None, max_length=200, description="A new label; null removes it.")

    def label_change(self) -> str | None:
        """``None`` when the body leaves the label alone, ``""`` when it removes it."""
        if "label" not in self.model_fields_set:
            return None
        return self.label or ""


class OccasionIn(Strict):
    name: StrictStr = Field(min_length=1, max_length=200)
    starts_on: IsoDate
    time_zone: StrictStr | None = Field(
        default=None, max_length=64, description="IANA zone the pages show times in (default UTC)."
    )


class EventIn(Strict):
    name: StrictStr = Field(min_length=1, max_length=200)
    starts_at: IsoDateTime | None = None


class GuestIn(Strict):
    name: StrictStr = Field(min_length=1, max_length=200)
    email: StrictStr | None = Field(default=None, max_length=320)


class GuestPatchIn(Strict):
    name: StrictStr | None = Field(default=None, min_length=1, max_length=200)
    email: StrictStr | None = Field(default=None, max_length=320)


class WebhookEndpointIn(Strict):
    url: StrictStr = Field(max_length=2048)
    event_types: list[StrictStr] = Field(min_length=1, max_length=20)


# --- responses ------------------------------------------------------------------------------


class CatalogOut(BaseModel):
    adapters: list[AdapterModel]


class OccasionIntegrationsOut(BaseModel):
    catalog: list[AdapterModel]
    connections: list[ConnectionModel]
    activity: list[ActivityModel]


class ConnectionCreatedOut(BaseModel):
    connection: ConnectionModel
    issued_key: str
    #: ``whsec_…``, only for adapters whose partners sign callbacks; shown this once.
    callback_signing_secret: str | None = None


class ConnectionOut(BaseModel):
    connection: ConnectionModel
    issued_key: str | None = None
    callback_signing_secret: str | None = None


class ActivityPageOut(BaseModel):
    activity: list[ActivityModel]
    next_cursor: str | None


class AdminConnectionsOut(BaseModel):
    connections: list[ConnectionModel]
    summary: AdminSummary
    next_cursor: str | None


class RecordsOut(BaseModel):
    records: list[RecordModel]
    next_cursor: str | None


class AuthorizeIn(Strict):
    """Where the planner's browser comes back to after the partner (a path on this site)."""

    return_to: StrictStr | None = Field(default=None, max_length=2000, examples=["/occasions/occ_01…"])


class AuthorizeOut(BaseModel):
    authorize_url: str


class SyncRequestIn(Strict):
    full: StrictBool = False


class SyncRequestedOut(BaseModel):
    sync_run_id: str


class CheckOut(BaseModel):
    """``POST …/connections/{id}/check``: the partner's verdict on the stored credentials."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "check": {
                    "ok": False,
                    "checked_at": "2027-06-01T09:30:00Z",
                    "problems": [
                        "The printer rejected the API key: enter a current API key for this connection."
                    ],
                }
            }
        }
    )
    check: CheckOutcome


class OccasionOut(BaseModel):
    occasion: OccasionModel


class EventOut(BaseModel):
    event: EventModel


class EventsOut(BaseModel):
    events: list[EventModel]
    next_cursor: str | None


class GuestOut(BaseModel):
    guest: GuestModel


class GuestsOut(BaseModel):
    guests: list[GuestModel]
    next_cursor: str | None


class MeOut(BaseModel):
    principal_type: Literal["integration_principal"]
    subject_id: str
    connection_id: str
    key_id: str
    scope: ScopeModel
    action_keys: list[str]
