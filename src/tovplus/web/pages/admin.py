"""The admin's page: every connection with filters and counts, and the support activity feed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from tovplus.db.states import ConnectionState
from tovplus.errors import InvalidInput
from tovplus.integrations.contract import Health
from tovplus.services import connections
from tovplus.services.auth import require_admin
from tovplus.services.connections import MAX_SEARCH_LENGTH, SORTS, AdminFilters
from tovplus.web import lookups
from tovplus.web.pages import support as support_pages
from tovplus.web.render import ACTIVITY_LABELS, HEALTH_LABELS, STATE_LABELS
from tovplus.web.urls import connection_url
from tovplus.web.visit import Visit, page, visit

router = APIRouter(include_in_schema=False)
ADMIN_PAGE_SIZE = 25
FEED_PAGE_SIZE = 15
ADMIN_URL = "/admin/integrations"
_HEALTH_CHOICES = (Health.HEALTHY, Health.DEGRADED, Health.FAILING, Health.UNKNOWN)


def _filter(q: Mapping[str, str], name: str, size: int = 64) -> str | None:
    value = q.get(name, "").strip()
    return value[:size] or None


def _filters_of(q: Mapping[str, str]) -> AdminFilters:
    return AdminFilters(
        state=_filter(q, "state"),
        health=_filter(q, "health"),
        integration_key=_filter(q, "integration_key"),
        occasion_id=_filter(q, "occasion_id"),
        q=_filter(q, "q", MAX_SEARCH_LENGTH),
        occasion=_filter(q, "occasion", MAX_SEARCH_LENGTH),
        sort=_filter(q, "sort"),
    )


def _choices(v: Visit) -> dict[str, Any]:
    """What the filter inputs offer."""
    return {
        "sorts": SORTS,
        "adapters": [(a.integration_key, a.name) for a in v.rt.registry],
        "states": [(s.value, STATE_LABELS[s]) for s in ConnectionState],
        "healths": [(h.value, HEALTH_LABELS[h]) for h in _HEALTH_CHOICES],
        "kinds": list(ACTIVITY_LABELS.items()),
    }


def vars_of(filters: AdminFilters) -> dict[str, str | None]:
    """The filters as query parameters."""
    return {
        "state": filters.state,
        "health": filters.health,
        "integration_key": filters.integration_key,
        "occasion_id": filters.occasion_id,
        "q": filters.q,
        "occasion": filters.occasion,
        "sort": filters.sort,
    }


def _linker(active: Mapping[str, str | None], kind: str | None) -> Callable[..., str]:
    """``link(**changes)``: this page's URL with the current filters, some changed or dropped."""

    def link(**changes: str | None) -> str:
        params = {**active, **({"kind": kind} if kind else {})}
        for key, value in changes.items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = value
        return ADMIN_URL + (f"?{urlencode(params)}" if params else "")

    return link


@router.get(ADMIN_URL)
@page
def admin(request: Request) -> Response:
    """Every connection with filters, counts and pages, beside the activity feed."""
    v = visit(request)
    user = require_admin(v.signed_in)
    q = request.query_params
    filters = _filters_of(q)
    kind = _filter(q, "kind")
    _everything, overall = connections.admin_list(v.rt, user, AdminFilters(), limit=1, cursor=None)
    error = None
    status = 200
    try:
        listing, summary = connections.admin_list(
            v.rt, user, filters, limit=ADMIN_PAGE_SIZE, cursor=_filter(q, "cursor")
        )
    except InvalidInput as exc:
        error, status = exc.message, 422
        listing, summary = connections.admin_list(
            v.rt, user, AdminFilters(), limit=ADMIN_PAGE_SIZE, cursor=None
        )
        filters = AdminFilters()
    try:
        feed = connections.admin_activity(
            v.rt, user, kind=kind, limit=FEED_PAGE_SIZE, cursor=_filter(q, "activity_cursor")
        )
    except InvalidInput as exc:
        error, status = exc.message, 422
        feed = connections.admin_activity(v.rt, user, kind=kind, limit=FEED_PAGE_SIZE, cursor=None)
    active = {k: val for k, val in vars_of(filters).items() if val}
    occasion_ids = [c["occasion_id"] for c in listing.items] + [
        a["occasion_id"] for a in feed.items if a["occasion_id"]
    ]
    return v.page(
        "admin.html",
        status=status,
        title="All integrations",
        **support_pages.admin_counts(v),
        overall=overall,
        summary=summary,
        connections=listing.items,
        next_cursor=listing.next_cursor,
        paged=bool(_filter(q, "cursor")),
        activity=feed.items,
        activity_next=feed.next_cursor,
        activity_paged=bool(_filter(q, "activity_cursor")),
        filters=active,
        kind=kind,
        error=error,
        occasion_names=lookups.occasion_names(v.rt, occasion_ids),
        actors=lookups.actor_names(v.rt, [a["actor"] for a in feed.items]),
        link=_linker(active, kind),
        connection_url=connection_url,
        **_choices(v),
    )
