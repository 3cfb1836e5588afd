"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from tovplus import __version__
from tovplus.api import docs, errors
from tovplus.api.errors import ErrorEnvelope
from tovplus.api.hot_path import DirectRoutes
from tovplus.api.limits import BodySizeLimit
from tovplus.api.request_ids import RequestIds
from tovplus.api.routes import (
    actions,
    admin,
    callbacks,
    catalog,
    connections,
    metrics,
    oauth,
    occasions,
    service,
    support,
    sync_runs,
    webhook_operations,
    webhooks,
)
from tovplus.runtime import Runtime
from tovplus.runtime.tracing import configure_tracing

CALLBACK_PREFIX = "/v1/integrations/callbacks/"
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorEnvelope, "description": description}
    for status, description in [
        (400, "Malformed JSON"),
        (401, "No or bad credentials"),
        (403, "Not allowed"),
        (404, "Unknown resource"),
        (409, "State conflict"),
        (413, "Body too large"),
        (422, "Invalid input"),
        (429, "Rate limited"),
    ]
}


def create_app(runtime: Runtime) -> FastAPI:
    """Build the API around ``runtime`` (the pages and the worker are mounted by the caller)."""
    app = FastAPI(
        title="TOV Plus Integrations",
        version=__version__,
        description="Partner integrations for TOV Plus occasions: catalog, connections, principals, "
        "callbacks, sync and webhooks.",
        responses=ERROR_RESPONSES,
        docs_url=None,  # served offline by api/docs.py
        redoc_url=None,
        # tracing is runtime/tracing.py's (OpenTelemetry's instrumentation, when it is on).
        # FastAPI's own telemetry would add its spans beside those, and it asks for the global
        # providers on every request even when none is set (three environment reads a request)
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.runtime = runtime
    errors.install(app)
    settings = runtime.settings

    def limit_for(path: str) -> int:
        return (
            settings.max_callback_body_bytes if path.startswith(CALLBACK_PREFIX) else settings.max_body_bytes
        )

    # innermost of ours: the partner callback skips FastAPI's per-request layers (api/hot_path.py)
    app.add_middleware(DirectRoutes, routes=callbacks.direct_routes())
    app.add_middleware(BodySizeLimit, limit_for=limit_for)
    app.add_middleware(RequestIds)  # outermost: even a 413 carries x-request-id
    # callbacks first: the partner hot path is matched before every other route is tried
    for module in (
        callbacks,
        service,
        catalog,
        occasions,
        connections,
        sync_runs,
        admin,
        webhooks,
        webhook_operations,
        support,
        metrics,
        oauth,
    ):
        app.include_router(module.router)
    app.include_router(actions.router)
    from tovplus.web import install as install_pages  # the pages call the same services

    install_pages(app)
    docs.install(app)
    configure_tracing(settings, app=app)  # off by default: does nothing
    return app
