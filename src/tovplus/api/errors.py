"""The error envelope; statuses come from the one mapping in :mod:`tovplus.errors`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tovplus import errors
from tovplus.api.request_ids import request_id_of
from tovplus.errors import status_for as status_for  # re-exported: api.routes.callbacks imports it from here
from tovplus.runtime import trace

log = logging.getLogger(__name__)


class FieldErrorModel(BaseModel):
    field: str
    code: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: list[FieldErrorModel] = []


class ErrorEnvelope(BaseModel):
    """Every error response has this shape."""

    error: ErrorBody


def envelope(code: str, message: str, fields: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or []}}


def error_response(exc: errors.TovPlusError) -> JSONResponse:
    status = status_for(exc)
    headers = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 500:
        log.error("unmapped error %s: %s", type(exc).__name__, exc.message)
        return JSONResponse(envelope("internal_error", "Something went wrong on our side."), status_code=500)
    return JSONResponse(
        envelope(exc.code, exc.message, [f.as_dict() for f in exc.fields]),
        status_code=status,
        headers=headers,
    )


_HTTP_CODES = {
    400: "malformed_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_response(exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own validation errors, in our envelope (malformed JSON is 400)."""
    problems = exc.errors()
    if any(p.get("type") == "json_invalid" for p in problems):
        return JSONResponse(
            envelope("malformed_json", "The request body is not valid JSON."), status_code=400
        )
    fields = []
    for p in problems[:50]:
        fields.append(
            {
                "field": _field_path(tuple(p.get("loc", ()))),
                "code": str(p.get("type", "invalid")),
                "message": str(p.get("msg", "Invalid value.")).removeprefix("Value error, "),
            }
        )
    return JSONResponse(envelope("invalid_input", "Some fields are not valid.", fields), status_code=422)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the envelope."""

    @app.exception_handler(errors.TovPlusError)
    async def _tovplus(_request: Request, exc: errors.TovPlusError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else "Not found."
        return JSONResponse(envelope(code, message), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(DataError)
    async def _unstorable(_request: Request, exc: DataError) -> JSONResponse:
        # the database refused a value (a NUL character, a number out of range): the
        # input's fault, not ours; request models refuse most of these before they get here
        log.warning("the database refused a value: %s", type(exc.orig).__name__)
        return JSONResponse(
            envelope("invalid_input", "The request holds a value that cannot be stored."), status_code=422
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        request_id = request_id_of(_request.scope)  # Starlette answers this one outside the middleware
        with trace.bound(request_id):
            log.exception("unhandled error: %s", type(exc).__name__)
        return JSONResponse(
            envelope("internal_error", "Something went wrong on our side."),
            status_code=500,
            headers={"x-request-id": request_id} if request_id else None,
        )
