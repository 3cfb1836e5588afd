"""Jinja2 templates and the small filters the pages use to speak plainly."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from tovplus.integrations.payloads import parse_timestamp
from tovplus.web.security import page_headers

STATIC_DIR = Path(__file__).parent / "static"

STATE_LABELS = {
    "draft": "Draft",
    "enabled": "Enabled",
    "disabled": "Disabled",
    "revoked": "Revoked",
}
HEALTH_LABELS = {
    "healthy": "Healthy",
    "degraded": "Degraded",
    "failing": "Failing",
    "unknown": "Unknown",
}
DIRECTION_LABELS = {
    "inbound": "Partner → TOV Plus",
    "outbound": "TOV Plus → partner",
    "bidirectional": "Both ways",
}
MODE_LABELS = {
    "pull": "We fetch updates on a schedule",
    "push": "We send updates",
    "callback": "The partner calls us",
    "manual": "Manual",
}
ACTIVITY_LABELS = {
    "connection.created": "Created",
    "connection.enabled": "Enabled",
    "connection.disabled": "Disabled",
    "connection.revoked": "Revoked",
    "connection.updated": "Settings changed",
    "key.rotated": "Key rotated",
    "sync.started": "Sync started",
    "sync.completed": "Sync completed",
    "sync.failed": "Sync failed",
    "callback.received": "Update received",
    "callback.rejected": "Update rejected",
}
SCOPE_LABELS = {
    "occasion": "The whole occasion",
    "event": "One event",
    "platform": "The whole platform",
}


def health_sentence(health: str, state: str) -> str:
    """What a health value means for a person looking at the connection."""
    if state != "enabled":
        return {
            "draft": "Not running yet: this connection is a draft. Enable it to start.",
            "disabled": "Not running: this connection is disabled.",
            "revoked": "Stopped for good: this connection was revoked.",
        }.get(state, "Not running.")
    return {
        "healthy": "Working normally.",
        "degraded": "Working, but something needs your attention.",
        "failing": "Not working. See the reasons below.",
        "unknown": "Not checked yet: the first sync will tell.",
    }.get(health, "Unknown.")


def _dt(value: str | datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_timestamp(value)


def when(value: str | datetime | None) -> str:
    moment = _dt(value)
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%-d %b %Y, %H:%M UTC")


def ago(value: str | datetime | None, now: datetime | None = None) -> str:
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


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def short_id(value: str | None) -> str:
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
    return f"/static/{name}?v={_static_version(name)}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("tovplus.web", "templates"),
        autoescape=select_autoescape(("html",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
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
    env.globals.update(static_url=static_url, health_sentence=health_sentence)
    return env


def render(template: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    html = environment().get_template(template).render(**context)
    return page_headers(HTMLResponse(html, status_code=status))
