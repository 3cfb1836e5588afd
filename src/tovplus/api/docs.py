"""The API's own documentation: Swagger UI at ``/docs`` and ReDoc at ``/redoc`` served from the
``fastapi-offline`` package's assets (no CDN), and an example for every request body and response.

Examples come from two places: a few written by hand for the objects a partner developer meets
first (:data:`CURATED`, by component name), and for everything else one built from the JSON Schema
itself (:func:`example_of`), so a route added later gets examples without anyone remembering to.
Every error response carries the envelope with a realistic ``code`` for its status.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/static-offline-docs"

_TIME = "2026-11-25T19:40:00Z"
_CONNECTION_ID = "con_01jd2v6s7k3m9x4q8r5t0w2y1z"
_OCCASION_ID = "occ_01jd2v5p0a8b7c6d5e4f3g2h1j"
#: Error examples by status: the contract's envelope with a typical code and message.
ERROR_EXAMPLES: dict[str, dict[str, Any]] = {
    "400": {"code": "malformed_json", "message": "The body is not valid JSON.", "fields": []},
    "401": {"code": "unauthenticated", "message": "Send a valid bearer token.", "fields": []},
    "403": {"code": "forbidden", "message": "This key may not read guests.", "fields": []},
    "404": {"code": "not_found", "message": "No such connection.", "fields": []},
    "409": {
        "code": "validation_failed",
        "message": "Fix the validation errors before enabling.",
        "fields": [{"field": "config.account_id", "code": "required", "message": "Account ID is required."}],
    },
    "413": {"code": "payload_too_large", "message": "The request body is too large.", "fields": []},
    "422": {
        "code": "invalid_input",
        "message": "Some fields are not valid.",
        "fields": [{"field": "config.account_id", "code": "too_short", "message": "Use 3 to 64 characters."}],
    },
    "429": {"code": "rate_limited", "message": "Too many requests; retry after 2 seconds.", "fields": []},
}
#: Hand-written examples of the objects partners read first, by OpenAPI component name.
CURATED: dict[str, Any] = {
    "ConnectionCreateIn": {
        "integration_key": "printing_partner",
        "label": "Invitations — Kyiv print shop",
        "config": {"account_id": "acct-123", "api_base_url": "https://printer.example.com/api"},
        "secrets": {"api_key": "pk_live_ABCDEFGHIJKLMNOP"},
        "scope": {"type": "occasion"},
        "state": "enabled",
    },
    "ConnectionPatchIn": {"state": "disabled", "label": "Menus and place cards"},
    "OccasionIn": {"name": "Olena & Taras", "starts_on": "2027-06-12", "time_zone": "Europe/Kyiv"},
    "GuestIn": {"name": "Ola Nordmann", "email": "ola@example.com"},
    "EventIn": {"name": "Dinner", "starts_at": "2027-06-12T18:00:00Z"},
    "WebhookEndpointIn": {
        "url": "https://hooks.example.com/tov",
        "event_types": ["integration.sync_completed"],
    },
    "ScopeModel": {"type": "occasion", "occasion_id": _OCCASION_ID, "event_id": None},
    "ValidationModel": {"errors": [], "warnings": []},
    "PrincipalModel": {
        "principal_type": "integration_principal",
        "subject_id": f"integration:{_CONNECTION_ID}",
        "key_id": "key_01jd2v6s7m",
        "key_last_used_at": _TIME,
    },
}
_STRING_FORMATS = {
    "date-time": _TIME,
    "date": "2027-06-12",
    "uri": "https://example.com/",
    "email": "a@example.com",
}
_NAMED_STRINGS = {
    "id": _CONNECTION_ID,
    "connection_id": _CONNECTION_ID,
    "occasion_id": _OCCASION_ID,
    "integration_key": "printing_partner",
    "name": "Printing partner",
    "label": "Invitations — Kyiv print shop",
    "email": "planner@example.com",
    "next_cursor": None,
    "cursor": None,
}


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def example_of(schema: dict[str, Any], components: dict[str, Any], name: str = "", depth: int = 0) -> Any:
    """A plausible value for ``schema`` (refs resolved against ``components``; curated ones win)."""
    ref = _ref_name(schema)
    if ref is not None:
        if ref in CURATED:
            return CURATED[ref]
        return example_of(components.get(ref, {}), components, name, depth + 1) if depth < 8 else {}
    if "example" in schema:
        return schema["example"]
    if "examples" in schema and isinstance(schema["examples"], list) and schema["examples"]:
        return schema["examples"][0]
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return example_of(options[0], components, name, depth + 1)
    return _by_type(schema, components, name, depth)


def _by_type(schema: dict[str, Any], components: dict[str, Any], name: str, depth: int) -> Any:
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {key: example_of(sub, components, key, depth + 1) for key, sub in props.items()}
    if kind == "array":
        return [example_of(schema.get("items", {}), components, name, depth + 1)] if depth < 8 else []
    if kind == "integer":
        return schema.get("minimum", 1)
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "string":
        if name in _NAMED_STRINGS:
            return _NAMED_STRINGS[name]
        if name.endswith("_at"):
            return _TIME
        return _STRING_FORMATS.get(schema.get("format", ""), "string")
    return None


def _add_examples(spec: dict[str, Any]) -> dict[str, Any]:
    """Put an ``example`` on every JSON request body and response of ``spec`` (in place)."""
    components = spec.get("components", {}).get("schemas", {})
    for methods in spec.get("paths", {}).values():
        for op in methods.values():
            if not isinstance(op, dict):
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and "example" not in body:
                body["example"] = example_of(body.get("schema", {}), components)
            for status, response in op.get("responses", {}).items():
                media = response.get("content", {}).get("application/json")
                if media is None or "example" in media:
                    continue
                if status in ERROR_EXAMPLES:
                    media["example"] = {"error": ERROR_EXAMPLES[status]}
                else:
                    media["example"] = example_of(media.get("schema", {}), components)
    return spec


def _openapi_with_examples(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` as FastAPI builds it, with the examples added once."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _add_examples(build())
        return app.openapi_schema

    return openapi


#: ReDoc's bundle draws its "API docs by Redocly" badge from this CDN address; we serve the bundle
#: with our own icon there instead (relative to ``/redoc``, so a ``root_path`` still works).
_REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
_OWN_LOGO = b"static/favicon.svg"


@lru_cache(maxsize=1)
def _redoc_bundle() -> bytes:
    """ReDoc's standalone bundle with nothing left to fetch from a CDN (read once per process)."""
    return (DOCS_ASSETS / "redoc.standalone.js").read_bytes().replace(_REDOC_CDN_LOGO, _OWN_LOGO)


def install(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` offline and give the schema its examples (call with
    ``docs_url=None, redoc_url=None`` on the app)."""

    # registered before the mount, so it answers for the bundle instead of the file as shipped
    @app.get(f"{ASSETS_URL}/redoc.standalone.js", include_in_schema=False)
    def redoc_bundle() -> Response:
        return Response(
            _redoc_bundle(),
            media_type="text/javascript",
            headers={"cache-control": "public, max-age=86400"},
        )

    app.mount(ASSETS_URL, StaticFiles(directory=DOCS_ASSETS), name="offline-docs")
    app.openapi = _openapi_with_examples(app)  # type: ignore[method-assign]
    title = app.title

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{title} — API reference",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}/static/favicon.svg",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{title} — API reference",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}/static/favicon.svg",
            with_google_fonts=False,
        )
