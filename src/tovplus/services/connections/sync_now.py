"""``POST …/connections/{id}/sync``: "Sync now" from the API and the pages."""

from __future__ import annotations

from tovplus.errors import NotFound
from tovplus.runtime import Runtime
from tovplus.services import sync as syncs
from tovplus.services.auth import MANAGE, Caller, authorize, is_id


def request_sync(
    rt: Runtime, caller: Caller, occasion_id: str, connection_id: str, *, full: bool = False
) -> str:
    """Queue a sync run (``full``: everything again) and return its id (404 for ids that cannot
    exist, without a query)."""
    if not is_id(connection_id):
        with rt.db.read() as session:
            authorize(session, caller, MANAGE, occasion_id)
        raise NotFound("No such connection.")
    return syncs.request_sync(rt, caller, occasion_id, connection_id, full=full)
