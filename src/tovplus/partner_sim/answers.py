"""What every simulated partner's handlers share: the error answer and reading a JSON object body."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse


def error(status: int, message: str) -> JSONResponse:
    """``{"error": message}`` with ``status`` (the simulated partners' own error shape)."""
    return JSONResponse({"error": message}, status_code=status)


async def json_object(request: Request) -> dict[str, Any] | None:
    """The body as a JSON object (an empty body is ``{}``); ``None`` for anything else."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
