"""The activity log: who did what to which connection, in redacted form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, bindparam, or_, select
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import Activity
from tovplus.db.types import utcnow
from tovplus.integrations.payloads import format_timestamp
from tovplus.integrations.redaction import redact_details
from tovplus.runtime.pagination import Page, page_of, paginate
from tovplus.runtime.views import View

PLANNER_RECENT = 20
#: ``show=`` filters a planner can pick: what went wrong, or what someone changed.
SHOW_CHOICES: dict[str, str] = {"errors": "Errors only", "changes": "Changes only"}


def shown(show: str) -> ColumnElement[bool]:
    """The condition of a ``show`` choice: ``errors`` (failed, rejected, retrying) or ``changes``
    (the connection's lifecycle, settings and key)."""
    kind = Activity.kind
    if show == "errors":
        return or_(kind.like("%.failed"), kind.like("%.rejected"), kind.like("%.retrying"))
    return or_(kind.like("connection.%"), kind.like("key.%"))


def record(
    session: Session,
    *,
    kind: str,
    actor: str,
    summary: str,
    occasion_id: str | None,
    connection_id: str | None = None,
    integration_key: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> Activity:
    """Add an activity entry to the session's transaction; ``details`` are redacted here."""
    entry = Activity(
        id=new_id("act"),
        occurred_at=utcnow(),
        occasion_id=occasion_id,
        connection_id=connection_id,
        integration_key=integration_key,
        kind=kind,
        actor=actor,
        summary=str(redact_details(summary))[:500],
        details=redact_details(dict(details or {})),
    )
    session.add(entry)
    return entry


def list_activity(
    session: Session,
    *,
    occasion_id: str | None = None,
    connection_id: str | None = None,
    kind: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    show: str | None = None,
) -> Page[Activity]:
    """Activity newest first, filtered by occasion, connection, kind and/or a ``show`` choice."""
    query = select(Activity)
    if occasion_id is not None:
        query = query.where(Activity.occasion_id == occasion_id)
    if connection_id is not None:
        query = query.where(Activity.connection_id == connection_id)
    if kind is not None:
        query = query.where(Activity.kind == kind)
    if show is not None:
        query = query.where(shown(show))
    query, size = paginate(query, Activity.id, limit=limit, cursor=cursor, newest_first=True)
    return page_of(session.scalars(query).all(), size, lambda a: a.id)


#: Built once: every planner overview reads it (docs/benchmarks.md, "Lists").
_OCCASION_RECENT = (
    select(Activity)
    .where(Activity.occasion_id == bindparam("occasion_id"))
    .order_by(Activity.id.desc())
    .limit(PLANNER_RECENT)
)


def recent_activity(session: Session, occasion_id: str) -> list[Activity]:
    """The occasion's :data:`PLANNER_RECENT` newest entries, newest first (``list_activity``'s
    first page for the occasion, as the overview shows it)."""
    return list(session.scalars(_OCCASION_RECENT, {"occasion_id": occasion_id}))


class ActivityModel(View):
    """The contract's ``Activity`` object: who did what to which connection."""

    id: str
    occurred_at: str
    connection_id: str | None
    integration_key: str | None
    occasion_id: str | None
    kind: str
    actor: str
    summary: str
    details: dict[str, Any]
    #: Consecutive identical routine entries folded into this one (``details.last_at``: the latest).
    repeat_count: int = 1


def activity_view(entry: Activity) -> ActivityModel:
    """The contract's ``Activity`` object for one entry."""
    return ActivityModel(
        id=entry.id,
        occurred_at=format_timestamp(entry.occurred_at),
        connection_id=entry.connection_id,
        integration_key=entry.integration_key,
        occasion_id=entry.occasion_id,
        kind=entry.kind,
        actor=entry.actor,
        summary=entry.summary,
        details=entry.details,
        repeat_count=entry.repeat_count or 1,
    )
