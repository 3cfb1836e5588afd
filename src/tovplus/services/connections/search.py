"""The admin list's search and sort: text that finds a connection, an occasion found by name.

``q`` matches a connection id (or its start), its label, its non-secret settings (the partner
account, venue id, ...) and the email of a planner of its occasion; ``occasion`` matches an
occasion's name or id. Both are case-insensitive. Sorted lists (anything but newest first) page
by offset, carried in the usual opaque cursor.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, String, case, cast, exists, func, or_, select

from tovplus.db.models import Connection, Occasion, OccasionPlanner, User
from tovplus.integrations.contract import Health
from tovplus.runtime.pagination import check_limit, decode_cursor, encode_cursor
from tovplus.services.connections.inputs import bad_input

MAX_SEARCH_LENGTH = 100
#: ``sort=`` values and what the page calls them; ``newest`` is the id order (cursor by id).
SORTS: dict[str, str] = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "health": "Worst health first",
    "last_sync": "Most recent sync first",
    "integration": "Integration (A to Z)",
}
_HEALTH_RANK = {Health.FAILING.value: 0, Health.DEGRADED.value: 1, Health.UNKNOWN.value: 2}


def _like(text: str) -> str:
    """``%text%`` with the LIKE wildcards in ``text`` escaped (escape character ``\\``)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _checked(name: str, value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > MAX_SEARCH_LENGTH:
        raise bad_input(name, "too_long", f"Search for {MAX_SEARCH_LENGTH} characters or fewer.")
    return value.strip()


def search_conditions(q: str | None, occasion: str | None) -> list[ColumnElement[bool]]:
    """The SQL conditions for a text search and an occasion search (none for blank input)."""
    conditions: list[ColumnElement[bool]] = []
    text = _checked("q", q)
    if text is not None:
        pattern = _like(text)
        planner_email = exists(
            select(OccasionPlanner.user_id)
            .join(User, User.id == OccasionPlanner.user_id)
            .where(
                OccasionPlanner.occasion_id == Connection.occasion_id,
                func.lower(User.email).like(pattern, escape="\\"),
            )
        )
        conditions.append(
            or_(
                func.lower(Connection.id).like(pattern, escape="\\"),
                func.lower(func.coalesce(Connection.label, "")).like(pattern, escape="\\"),
                func.lower(cast(Connection.config, String)).like(pattern, escape="\\"),
                planner_email,
            )
        )
    name = _checked("occasion", occasion)
    if name is not None:
        pattern = _like(name)
        conditions.append(
            Connection.occasion_id.in_(
                select(Occasion.id).where(
                    or_(
                        func.lower(Occasion.name).like(pattern, escape="\\"),
                        func.lower(Occasion.id) == name.lower(),
                    )
                )
            )
        )
    return conditions


def check_sort(sort: str | None) -> str:
    """The sort to use (``newest`` when none); 422 ``sort`` for an unknown one."""
    if sort is None or sort == "":
        return "newest"
    if sort not in SORTS:
        raise bad_input("sort", "invalid", "sort must be one of: " + ", ".join(SORTS) + ".")
    return sort


def sorted_page(
    query: Select[Any], sort: str, *, limit: int | None, cursor: str | None
) -> tuple[Select[Any], int, int]:
    """``query`` ordered by ``sort`` (not ``newest``), one page by offset: (query, size, offset)."""
    size = check_limit(limit)
    offset = _offset_of(cursor) if cursor else 0
    order: list[Any]
    if sort == "oldest":
        order = [Connection.id.asc()]
    elif sort == "health":
        order = [case(_HEALTH_RANK, value=Connection.health, else_=3), Connection.id.desc()]
    elif sort == "last_sync":
        order = [Connection.last_sync_at.is_(None), Connection.last_sync_at.desc(), Connection.id.desc()]
    else:
        order = [Connection.integration_key, func.lower(func.coalesce(Connection.label, "")), Connection.id]
    return query.order_by(*order).offset(offset).limit(size + 1), size, offset


def offset_cursor(offset: int) -> str:
    """The opaque cursor of a sorted list's page that starts at ``offset``."""
    return encode_cursor(f"o{offset}")


def _offset_of(cursor: str) -> int:
    value = decode_cursor(cursor)
    if not (value.startswith("o") and value[1:].isdigit()) or len(value) > 12:
        raise bad_input("cursor", "invalid", "Unknown cursor.")
    return int(value[1:])
