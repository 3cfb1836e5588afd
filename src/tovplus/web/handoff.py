"""Page data for what planners hand to a partner and read back in plain words.

* :func:`partner_setup`: the "Partner setup" panel: the callback URL, the header name, our API's
  base URL, the key id and the docs, each with a copy button.
* :func:`record_describer`: a synced record's data for a table cell, with the adapter's status
  labels, event names instead of event ids, and times in the occasion's zone.
* :func:`live_status`: what is running on a connection right now, in words, for the page's short
  poll (``/live``) and its first render.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tovplus.db.states import SyncRunShownState
from tovplus.integrations.contract import CallbackAuth
from tovplus.integrations.payloads import parse_timestamp
from tovplus.runtime import Runtime
from tovplus.services import activity, occasions
from tovplus.services.auth import UserCaller
from tovplus.services.connections import SyncScheduleModel
from tovplus.web.lookups import occasion_time_zone
from tovplus.web.render import ago
from tovplus.web.times import when
from tovplus.web.visit import Readable

#: The header a partner sends its issued key in (the contract's name).
SECRET_HEADER = "x-tov-integration-secret"  # noqa: S105 - a header name, not a secret
CALLBACK_PATH = "/v1/integrations/callbacks/{integration_key}/{connection_id}"
#: The partner developer's reference served by every TOV Plus (offline, no CDN).
API_REFERENCE_PATH = "/redoc"
_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


@dataclass(frozen=True, slots=True)
class SetupItem:
    """One value the partner needs, with an id for its copy button."""

    id: str
    label: str
    value: str
    hint: str


@dataclass(frozen=True, slots=True)
class PartnerSetup:
    items: list[SetupItem]
    signed: bool
    partner_docs_url: str | None
    api_reference_url: str


def partner_setup(rt: Runtime, view: Readable, adapter: Mapping[str, Any] | None) -> PartnerSetup:
    """What the partner's developer needs to call TOV Plus for this connection."""
    base = rt.settings.public_base_url.rstrip("/")
    items: list[SetupItem] = []
    signed = bool(adapter) and adapter.get("callback_auth") == CallbackAuth.STANDARD_WEBHOOKS  # type: ignore[union-attr]
    if adapter and adapter["supports_inbound_callbacks"]:
        path = CALLBACK_PATH.format(integration_key=view["integration_key"], connection_id=view["id"])
        items.append(
            SetupItem(
                "setup-callback-url", "Callback URL", base + path, "Where the partner sends updates (POST)."
            )
        )
        items.append(
            SetupItem(
                "setup-header",
                "Header for the key",
                SECRET_HEADER,
                "The partner puts the issued key in this header on every callback.",
            )
        )
    items.append(
        SetupItem(
            "setup-api-base",
            "TOV Plus API address",
            base + "/v1",
            "For reading the occasion, events, guests.",
        )
    )
    key_id = view["principal"]["key_id"]
    if key_id:
        items.append(
            SetupItem(
                "setup-key-id",
                "Key ID",
                key_id,
                "Names the key without revealing it; the key itself was shown once when issued.",
            )
        )
    labels = (adapter or {}).get("labels") or {}
    return PartnerSetup(items, signed, labels.get("partner_docs_url"), base + API_REFERENCE_PATH)


def record_describer(
    adapter: Mapping[str, Any] | None, event_names: Mapping[str, str], limit: int = 4
) -> Callable[[Any], list[tuple[str, str]]]:
    """``describe(data)``: a few ``(label, value)`` pairs of a record's data, in plain words."""
    labels = (adapter or {}).get("labels") or {}
    statuses: Mapping[str, str] = labels.get("statuses") or {}

    def value_of(key: str, value: Any) -> str:
        if value is None:
            return "—"
        text = str(value)
        if isinstance(value, str):
            if key == "event_id" and value in event_names:
                return event_names[value]
            if key == "status" and value in statuses:
                return statuses[value]
            if _ISO_TIME.match(value):
                try:
                    return when(parse_timestamp(value))
                except ValueError:
                    return text
        return text if len(text) <= 120 else text[:119] + "…"

    def describe(data: Any) -> list[tuple[str, str]]:
        if not isinstance(data, dict):
            return [("value", str(data)[:120])]
        out = []
        for key, value in list(data.items())[:limit]:
            name = "event" if key == "event_id" and value in event_names else str(key).replace("_", " ")
            out.append((name, value_of(str(key), value)))
        return out

    return describe


@dataclass(frozen=True, slots=True)
class LiveStatus:
    """What is going on with a connection, for people: busy while a sync is queued or running."""

    busy: bool
    message: str
    fingerprint: str

    def as_json(self) -> dict[str, Any]:
        return {"busy": self.busy, "message": self.message, "fingerprint": self.fingerprint}


_RUN_WORDS: dict[str, str] = {
    SyncRunShownState.QUEUED: "A sync is waiting to start",
    SyncRunShownState.RUNNING: "A sync is running",
}


def live_status(view: Readable, schedule: SyncScheduleModel) -> LiveStatus:
    """The connection's live status; ``fingerprint`` changes whenever the page would."""
    latest = schedule.runs[0] if schedule.runs else None
    active = schedule.active_run
    fingerprint = "|".join(
        str(part)
        for part in (
            view["state"],
            view["health"],
            view["updated_at"],
            view["last_sync_at"],
            latest.id if latest else "",
            latest.state if latest else "",
        )
    )
    if active is None:
        return LiveStatus(False, "Nothing is running right now.", fingerprint)
    if active.state == SyncRunShownState.RETRY_SCHEDULED.value:
        words = f"The last try failed; try {active.attempts + 1} is waiting"
    else:
        words = _RUN_WORDS.get(active.state, "A sync is under way")
    return LiveStatus(
        True,
        f"{words} (since {ago(active.started_at or active.queued_at)}). This page updates by itself.",
        fingerprint,
    )


def event_names(rt: Runtime, caller: UserCaller, occasion_id: str) -> dict[str, str]:
    """``{event id: name}`` of the occasion's events (call after the occasion was authorized)."""
    with rt.db.read() as session:
        page = occasions.list_events(session, caller, occasion_id, limit=200, cursor=None)
        return {e.id: e.name for e in page.items}


def connection_page_extras(
    rt: Runtime,
    caller: UserCaller,
    view: Readable,
    adapter: Mapping[str, Any] | None,
    schedule: SyncScheduleModel,
) -> dict[str, Any]:
    """What the connection page's own partials need (setup panel, live status, plain records)."""
    occasion_id = str(view["occasion_id"])
    return {
        "time_zone": occasion_time_zone(rt, occasion_id),
        "setup": partner_setup(rt, view, adapter),
        "live": live_status(view, schedule),
        "record_summary": record_describer(adapter, event_names(rt, caller, occasion_id)),
        "display_name": view["label"] or view["name"],
        "show_choices": activity.SHOW_CHOICES,
    }
