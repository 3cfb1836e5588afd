"""The connection page's short poll: a small JSON answer saying, in words, what is running.

The page asks every few seconds while something runs (``static/app.js``) and reloads itself when
the ``fingerprint`` changes; nothing here needs a client framework.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from tovplus.services import connections
from tovplus.web.handoff import live_status
from tovplus.web.visit import page, visit

router = APIRouter(include_in_schema=False)


@router.get("/occasions/{occasion_id}/integrations/connections/{connection_id}/live")
@page
def connection_live(request: Request, occasion_id: str, connection_id: str) -> Response:
    """``{"busy", "message", "fingerprint"}`` of the connection (the same checks as its page)."""
    v = visit(request)
    view = connections.get_connection(v.rt, v.signed_in, occasion_id, connection_id)
    schedule = connections.sync_schedule(v.rt, v.signed_in, occasion_id, connection_id)
    status = live_status(view, schedule)
    return JSONResponse(status.as_json(), headers={"Cache-Control": "no-store"})
