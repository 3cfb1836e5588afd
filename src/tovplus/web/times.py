"""Times on the pages in the occasion's own zone, with UTC on hover (the API stays UTC).

A page that belongs to an occasion passes ``time_zone`` to its template; :func:`showing_zone` holds
it while the template renders, and the ``when`` / ``when_utc`` filters read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tovplus.integrations.payloads import parse_timestamp

_zone: ContextVar[tzinfo] = ContextVar("page_time_zone", default=UTC)


@lru_cache(maxsize=256)
def zone_of(name: str | None) -> tzinfo:
    """The zone called ``name`` (UTC for none or one this machine does not know)."""
    if not name or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


@contextmanager
def showing_zone(name: str | None) -> Iterator[None]:
    """Render times in the zone called ``name`` inside this block."""
    token = _zone.set(zone_of(name))
    try:
        yield
    finally:
        _zone.reset(token)


def as_moment(value: str | datetime | None) -> datetime | None:
    """A stored time (RFC 3339 text or a datetime) as an aware datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_timestamp(value)


def when_utc(value: str | datetime | None) -> str:
    """A moment as "12 Jun 2027, 18:00 UTC" ("—" for none)."""
    moment = as_moment(value)
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%-d %b %Y, %H:%M UTC")


def when(value: str | datetime | None) -> str:
    """A moment in the page's zone, e.g. "12 Jun 2027, 21:00 EEST" ("—" for none)."""
    moment = as_moment(value)
    if moment is None:
        return "—"
    zone = _zone.get()
    if zone is UTC:
        return when_utc(moment)
    local = moment.astimezone(zone)
    return f"{local.strftime('%-d %b %Y, %H:%M')} {local.tzname() or ''}".rstrip()


def zone_name() -> str:
    """The name of the zone the page shows times in."""
    return str(_zone.get())
