"""What a planner reads: one connection, the occasion's overview, its activity and records."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from tovplus.db.models import Connection
from tovplus.runtime import Runtime
from tovplus.runtime.pagination import Page
from tovplus.services import activity, catalog, records
from tovplus.services.activity import ActivityModel
from tovplus.services.auth import MANAGE, Caller, authenticate_in, authorize
from tovplus.services.connections import store
from tovplus.services.connections.inputs import bad_input
from tovplus.services.connections.view_cache import listed_views, listing, read_listing
from tovplus.services.connections.views import ConnectionModel, OccasionOverview, build_views
from tovplus.services.records import RecordModel


def get_connection(rt: Runtime, caller: Caller, occasion_id: str, connection_id: str) -> ConnectionModel:
    """One connection of the occasion (404 for anyone who may not manage it)."""
    with rt.db.read() as session:
        authorize(session, caller, MANAGE, occasion_id)
        row = store.load_connection(session, occasion_id, connection_id)
        return build_views(rt, session, [row])[0]


def occasion_overview(rt: Runtime, caller: Caller, occasion_id: str) -> OccasionOverview:
    """The planner's page data: catalog, the occasion's connections, recent activity."""
    with rt.db.snapshot() as session:
        return _overview(rt, session, caller, occasion_id)


def occasion_overview_for_token(rt: Runtime, token: str | None, occasion_id: str) -> OccasionOverview:
    """:func:`occasion_overview` for a bearer token, looked up in the same read session."""
    with rt.db.snapshot() as session:
        return _overview(rt, session, authenticate_in(rt, session, token), occasion_id)


#: Built once, as every statement a list runs on each request: building a statement and its
#: cache key took about as long as running it (docs/benchmarks.md, "Lists").
_OCCASION_LISTING = listing(
    select(Connection).where(Connection.occasion_id == bindparam("occasion_id")).order_by(Connection.id)
)


def _overview(rt: Runtime, session: Session, caller: Caller, occasion_id: str) -> OccasionOverview:
    authorize(session, caller, MANAGE, occasion_id)
    listed = read_listing(session, _OCCASION_LISTING, {"occasion_id": occasion_id})
    recent = activity.recent_activity(session, occasion_id)
    return OccasionOverview(
        catalog=catalog.catalog(rt),
        connections=listed_views(rt, session, listed),
        activity=[activity.activity_view(a) for a in recent],
    )


def occasion_activity(
    rt: Runtime,
    caller: Caller,
    occasion_id: str,
    *,
    connection_id: str | None,
    limit: int | None,
    cursor: str | None,
    show: str | None = None,
) -> Page[ActivityModel]:
    """The occasion's activity newest first, or one of its connections' (404 for others);
    ``show`` is one of ``activity.SHOW_CHOICES`` (422 for another)."""
    if show is not None and show not in activity.SHOW_CHOICES:
        raise bad_input("show", "invalid", "show must be errors or changes (or left out for everything).")
    with rt.db.read() as session:
        authorize(session, caller, MANAGE, occasion_id)
        if connection_id is not None:
            store.load_connection(session, occasion_id, connection_id)
        page = activity.list_activity(
            session,
            occasion_id=occasion_id,
            connection_id=connection_id,
            limit=limit,
            cursor=cursor,
            show=show,
        )
        return Page([activity.activity_view(a) for a in page.items], page.next_cursor)


def list_records(
    rt: Runtime,
    caller: Caller,
    occasion_id: str,
    connection_id: str,
    *,
    limit: int | None,
    cursor: str | None,
    include_deleted: bool = False,
) -> Page[RecordModel]:
    """What sync and callbacks stored for one connection of the occasion (deleted ones if asked)."""
    with rt.db.read() as session:
        authorize(session, caller, MANAGE, occasion_id)
        store.load_connection(session, occasion_id, connection_id)
        return records.list_records(
            session, connection_id, limit=limit, cursor=cursor, include_deleted=include_deleted
        )
