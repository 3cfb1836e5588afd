"""The admin's list: every connection on the platform with filters, summary counts, the support feed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from tovplus.db.models import Connection
from tovplus.integrations.contract import Health
from tovplus.runtime import Runtime
from tovplus.runtime.pagination import Page, page_of, paginate
from tovplus.services import activity
from tovplus.services.activity import ActivityModel
from tovplus.services.auth import Caller, is_id, require_admin
from tovplus.services.connections import counts
from tovplus.services.connections.inputs import KIND, SAFE_NAME, STATES, bad_input, check_state
from tovplus.services.connections.run_history import retrying_count
from tovplus.services.connections.search import check_sort, offset_cursor, search_conditions, sorted_page
from tovplus.services.connections.view_cache import listed_views, listing, read_listing
from tovplus.services.connections.views import AdminSummary, ConnectionModel


@dataclass(frozen=True, slots=True)
class AdminFilters:
    """What the admin list is narrowed to; ``None`` matches everything."""

    state: str | None = None
    health: str | None = None
    integration_key: str | None = None
    occasion_id: str | None = None
    #: Text searched in connection ids, labels, settings and planner emails (``services.connections.search``).
    q: str | None = None
    #: Text searched in occasion names (or an occasion's id).
    occasion: str | None = None
    #: One of ``search.SORTS``; ``None`` is newest first.
    sort: str | None = None


def _conditions(filters: AdminFilters) -> list[ColumnElement[bool]]:
    """The filters as SQL conditions (422 for values that cannot match anything)."""
    check_state(filters.state)
    if filters.health is not None and filters.health not in {h.value for h in Health}:
        raise bad_input("health", "invalid", "health must be unknown, healthy, degraded or failing.")
    if filters.occasion_id is not None and not is_id(filters.occasion_id):
        raise bad_input("occasion_id", "invalid", "occasion_id is not a valid id.")
    if filters.integration_key is not None and not SAFE_NAME.fullmatch(filters.integration_key):
        raise bad_input("integration_key", "invalid", "integration_key is not a valid integration key.")
    conditions = []
    if filters.state is not None:
        conditions.append(Connection.state == filters.state)
    if filters.health is not None:
        conditions.append(Connection.health == filters.health)
    if filters.integration_key is not None:
        conditions.append(Connection.integration_key == filters.integration_key)
    if filters.occasion_id is not None:
        conditions.append(Connection.occasion_id == filters.occasion_id)
    return conditions + search_conditions(filters.q, filters.occasion)


def _pair_counts(
    session: Session, filters: AdminFilters, conditions: list[ColumnElement[bool]]
) -> Counter[tuple[str, str]]:
    """``{(state, health): connections}`` matching the filters: from the trigger-kept counts
    (``counts``) when only state and health narrow the set, else counted over the matching set."""
    by_pair_only = (filters.state is not None) + (filters.health is not None)
    if len(conditions) == by_pair_only:  # no other condition (blank search text adds none)
        return counts.pair_counts(session, state=filters.state, health=filters.health)
    rows = session.execute(
        select(Connection.state, Connection.health, func.count())
        .where(*conditions)
        .group_by(Connection.state, Connection.health)
    ).all()
    return Counter({(state, health): count for state, health, count in rows})


def _summary(session: Session, filters: AdminFilters, conditions: list[ColumnElement[bool]]) -> AdminSummary:
    by_state: dict[str, int] = dict.fromkeys(STATES, 0)
    by_health: dict[str, int] = {h.value: 0 for h in Health}
    for (state, health), count in _pair_counts(session, filters, conditions).items():
        by_state[state] = by_state.get(state, 0) + count
        by_health[health] = by_health.get(health, 0) + count
    return AdminSummary(
        total=sum(by_state.values()),
        by_state=by_state,
        by_health=by_health,
        failing=by_health.get(Health.FAILING.value, 0),
        retrying=retrying_count(session, conditions),
    )


def admin_list(
    rt: Runtime, caller: Caller, filters: AdminFilters, *, limit: int | None, cursor: str | None
) -> tuple[Page[ConnectionModel], AdminSummary]:
    """Every connection (newest first) matching ``filters``, and summary counts of that set."""
    require_admin(caller)
    conditions = _conditions(filters)
    sort = check_sort(filters.sort)
    if sort != "newest":
        return _sorted_list(rt, filters, conditions, sort, limit=limit, cursor=cursor)
    with rt.db.snapshot() as session:
        query, size = paginate(
            select(Connection).where(*conditions),
            Connection.id,
            limit=limit,
            cursor=cursor,
            newest_first=True,
        )
        page = page_of(read_listing(session, listing(query)), size, lambda row: row[0])
        summary = _summary(session, filters, conditions)
        return Page(listed_views(rt, session, page.items), page.next_cursor), summary


def _sorted_list(
    rt: Runtime,
    filters: AdminFilters,
    conditions: list[ColumnElement[bool]],
    sort: str,
    *,
    limit: int | None,
    cursor: str | None,
) -> tuple[Page[ConnectionModel], AdminSummary]:
    """The admin list in another order than newest first, paged by offset."""
    with rt.db.snapshot() as session:
        query, size, offset = sorted_page(
            select(Connection).where(*conditions), sort, limit=limit, cursor=cursor
        )
        rows = read_listing(session, listing(query))
        next_cursor = offset_cursor(offset + size) if len(rows) > size else None
        summary = _summary(session, filters, conditions)
        return Page(listed_views(rt, session, rows[:size]), next_cursor), summary


def admin_activity(
    rt: Runtime, caller: Caller, *, kind: str | None, limit: int | None, cursor: str | None
) -> Page[ActivityModel]:
    """The platform-wide activity feed, newest first, optionally of one kind."""
    require_admin(caller)
    if kind is not None and not KIND.fullmatch(kind):
        raise bad_input("kind", "invalid", "kind looks like connection.enabled or sync.failed.")
    with rt.db.read() as session:
        page = activity.list_activity(session, kind=kind, limit=limit, cursor=cursor)
        return Page([activity.activity_view(a) for a in page.items], page.next_cursor)
