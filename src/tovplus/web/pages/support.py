"""Support on the pages: a connection's diagnostics download and its suspension banner's data,
the admin's count of failing webhook endpoints."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from tovplus.services import support, webhooks
from tovplus.web.visit import Visit, page, visit

router = APIRouter(include_in_schema=False)


@router.get("/occasions/{occasion_id}/integrations/connections/{connection_id}/diagnostics")
@page
def diagnostics(request: Request, occasion_id: str, connection_id: str) -> Response:
    """The connection's diagnostics file (planners of the occasion, admins)."""
    v = visit(request)
    document = support.connection_diagnostics(v.rt, v.signed_in, occasion_id, connection_id)
    return Response(
        json.dumps(document, indent=2, sort_keys=True),
        media_type="application/json",
        headers={"content-disposition": f'attachment; filename="diagnostics-{connection_id}.json"'},
    )


def admin_counts(v: Visit) -> dict[str, Any]:
    """What the admin page adds: the failing webhook endpoints on the platform."""
    return {"failing_endpoints": webhooks.failing_endpoint_count(v.rt, v.signed_in)}
