"""Venue operations: a venue's own system pushes room assignments for events."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tovplus.errors import FieldIssue
from tovplus.integrations.contract import (
    Adapter,
    CallbackContext,
    CallbackResult,
    Direction,
    Mode,
    RecordUpsert,
    ValidationContext,
)
from tovplus.integrations.fields import Field
from tovplus.integrations.payloads import PayloadReader
from tovplus.integrations.wording import Wording

RECORD_KIND = "room_assignment"


#: What a zone name looks like: ``UTC``, ``Europe/Kyiv``, ``America/Argentina/Buenos_Aires``, ``Etc/GMT+5``.
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*")
#: Files in the zone database that ``ZoneInfo`` opens but that are not zones a venue is in.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


def is_iana_zone(name: str) -> bool:
    """True when ``name`` is an IANA time zone known to this machine."""
    if not isinstance(name, str) or len(name) > 64 or not _ZONE_NAME.fullmatch(name):
        return False
    if name in _NOT_ZONES or name.startswith(("posix/", "right/")):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


class VenueOpsAdapter(Adapter):
    integration_key = "venue_ops"
    name = "Venue operations"
    description = "Let the venue's operations system tell you which room each event is in."
    category = "venue"
    direction = Direction.INBOUND
    mode = Mode.CALLBACK
    capabilities = ("rooms.callbacks",)
    action_keys = ("occasion.read", "events.read")
    config_fields = (
        Field(
            "venue_id",
            "Venue ID",
            required=True,
            help="The venue's identifier in its own system.",
            max_length=128,
        ),
        Field(
            "timezone",
            "Time zone",
            help="The venue's IANA time zone, e.g. Europe/Kyiv. Defaults to UTC.",
            default="UTC",
            max_length=64,
        ),
    )
    secret_fields = (
        Field(
            "api_token",
            "API token",
            required=True,
            help="Issued by the venue's operations system (ask the venue's IT contact for a token "
            "for TOV Plus). Kept encrypted.",
        ),
    )
    supports_inbound_callbacks = True
    wording = Wording(
        capabilities={"rooms.callbacks": "Tells you which room each event is in"},
        record_kinds={"room_assignment": "Room assignment"},
    )

    def validate(self, ctx: ValidationContext) -> Iterable[FieldIssue]:
        zone = ctx.config.get("timezone")
        if isinstance(zone, str) and zone and not is_iana_zone(zone):
            yield FieldIssue(
                "config.timezone", "invalid_timezone", "Time zone must be an IANA zone such as Europe/Kyiv."
            )

    def map_callback(self, payload: Any, ctx: CallbackContext) -> CallbackResult:
        reader = PayloadReader(payload)
        reader.literal("event", "room.assigned")
        event_id = reader.string("event_id", max_length=200)
        room = reader.string("room", max_length=200)
        if event_id and not reader.issues and not ctx.event_belongs_to_occasion(event_id):
            reader.issues.append(
                FieldIssue("payload.event_id", "unknown_event", "event_id is not an event of this occasion.")
            )
        reader.finish()
        return CallbackResult(
            records=[RecordUpsert(RECORD_KIND, event_id, {"event_id": event_id, "room": room})],
            summary=f"Room {room} assigned to event {event_id}",
            details={"event": "room.assigned", "event_id": event_id, "room": room},
        )
