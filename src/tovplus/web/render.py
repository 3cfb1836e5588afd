"""Jinja2 templates and the small filters the pages use to speak plainly."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from tovplus.db.states import ConnectionState
from tovplus.integrations.contract import Direction, Health, Mode, ScopeType
from tovplus.web.security import page_headers
from tovplus.web.times import as_moment, showing_zone, when, when_utc, zone_name

STATIC_DIR = Path(__file__).parent / "static"

# Keyed by the enums; a StrEnum member hashes and compares as its value, so stored strings find them.
STATE_LABELS: dict[str, str] = {
    ConnectionState.DRAFT: "Draft",
    ConnectionState.ENABLED: "Enabled",
    ConnectionState.DISABLED: "Disabled",
    ConnectionState.REVOKED: "Revoked",
}
HEALTH_LABELS: dict[str, str] = {
    Health.HEALTHY: "Healthy",
    Health.DEGRADED: "Degraded",
    Health.FAILING: "Failing",
    Health.UNKNOWN: "Unknown",
}
DIRECTION_LABELS: dict[str, str] = {
    Direction.INBOUND: "Partner → TOV Plus",
    Direction.OUTBOUND: "TOV Plus → partner",
    Direction.BIDIRECTIONAL: "Both ways",
}
MODE_LABELS: dict[str, str] = {
    Mode.PULL: "We fetch updates on a schedule",
    Mode.PUSH: "We send updates",
    Mode.CALLBACK: "The partner calls us",
    Mode.MANUAL: "Manual",
}
ACTIVITY_LABELS = {
    "connection.created": "Created",
    "connection.enabled": "Enabled",
    "connection.disabled": "Disabled",
    "connection.revoked": "Revoked",
    "connection.updated": "Settings changed",
    "key.rotated": "Key rotated",
    "connection.checked": "Connection tested",
    "sync.started": "Sync started",
    "sync.retrying": "Sync retrying",
    "sync.completed": "Sync completed",
    "sync.failed": "Sync failed",
    "callback.received": "Update received",
    "callback.rejected": "Update rejected",
}
SCOPE_LABELS: dict[str, str] = {
    ScopeType.OCCASION: "The whole occasion",
    ScopeType.EVENT: "One event",
    ScopeType.PLATFORM: "The whole platform",
}


_STOPPED_SENTENCES: dict[str, str] = {
    ConnectionState.DRAFT: "Not running yet: this connection is a draft. Enable it to start.",
    ConnectionState.DISABLED: "Not running: this connection is disabled.",
    ConnectionState.REVOKED: "Stopped for good: this connection was revoked.",
}
_HEALTH_SENTENCES: dict[str, str] = {
    Health.HEALTHY: "Working normally.",
    Health.DEGRADED: "Working, but something needs your attention.",
    Health.FAILING: "Not working. See the reasons below.",
    Health.UNKNOWN: "Not checked yet: the first sync will tell.",
}


def health_sentence(health: str, state: str, adapter: Mapping[str, Any] | None = None) -> str:
    """What a health value means for a person looking at the connection.

    With ``adapter`` (its catalog entry), a callback-only adapter is never promised a sync.
    """
    if state != ConnectionState.ENABLED:
        return _STOPPED_SENTENCES.get(state, "Not running.")
    if health == Health.UNKNOWN and adapter is not None and not adapter.get("supports_background_sync"):
        return (
            f"Ready: {adapter.get('name', 'the partner')} sends its updates to TOV Plus; nothing is fetched."
        )
    return _HEALTH_SENTENCES.get(health, "Unknown.")


_dt = as_moment


def ago(value: str | datetime | None, now: datetime | None = None) -> str:
    """How long ago, in words ("3 hours ago"; "never" for none)."""
    moment = _dt(value)
    if moment is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 0:
        return when(moment)
    if seconds < 45:
        return "just now"
    for size, unit in ((86400 * 30, "month"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = round(seconds / size) if size == 60 else seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"


def record_summary(data: Any, limit: int = 4) -> list[tuple[str, str]]:
    """A few ``(key, value)`` pairs of a synced record's data to show in a table cell."""
    if not isinstance(data, dict):
        return [("value", str(data)[:120])]
    out = []
    for key, value in list(data.items())[:limit]:
        text = "—" if value is None else str(value)
        out.append((str(key).replace("_", " "), text if len(text) <= 120 else text[:119] + "…"))
    return out


def pretty_json(value: Any) -> str:
    """Indented, sorted JSON for showing a payload."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def short_id(value: str | None) -> str:
    """A long id shortened for display ("con_…abcdef")."""
    if not value:
        return ""
    return value if len(value) <= 14 else f"{value[:4]}…{value[-6:]}"


@lru_cache(maxsize=64)
def _static_version(name: str) -> str:
    path = STATIC_DIR / name
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    except OSError:
        return "0"


def static_url(name: str) -> str:
    """A static file's URL with a content hash, so browsers refetch it when it changes."""
    return f"/static/{name}?v={_static_version(name)}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The Jinja2 environment (autoescaped, strict about undefined names) with our filters."""
    env = Environment(
        loader=PackageLoader("tovplus.web", "templates"),
        autoescape=select_autoescape(("html",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        when_utc=when_utc,
        ago=ago,
        pretty_json=pretty_json,
        short_id=short_id,
        state_label=lambda s: STATE_LABELS.get(s, str(s).title()),
        health_label=lambda h: HEALTH_LABELS.get(h, str(h).title()),
        direction_label=lambda d: DIRECTION_LABELS.get(d, str(d)),
        mode_label=lambda m: MODE_LABELS.get(m, str(m)),
        activity_label=lambda k: ACTIVITY_LABELS.get(
            k, str(k).replace(".", " ").replace("_", " ").capitalize()
        ),
        scope_label=lambda s: SCOPE_LABELS.get(s, str(s)),
    )
    env.globals.update(static_url=static_url, health_sentence=health_sentence, zone_name=zone_name)
    return env


def render(template: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    """Render ``template`` as an HTML response with the page headers."""
    with showing_zone(context.get("time_zone")):
        html = environment().get_template(template).render(**context)
    return page_headers(HTMLResponse(html, status_code=status))
