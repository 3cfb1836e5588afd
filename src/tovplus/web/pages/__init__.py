"""The pages' routes, one module per page or area; :data:`router` holds them all."""

from __future__ import annotations

from fastapi import APIRouter

from tovplus.web.pages import (
    admin,
    connection,
    connection_actions,
    connection_oauth,
    integrations,
    live,
    occasion_new,
    occasion_settings,
    sign_in,
    support,
    sync_log,
    webhooks,
)

_AREAS = (
    sign_in,
    occasion_new,
    occasion_settings,
    integrations,
    connection,
    connection_actions,
    connection_oauth,
    sync_log,
    live,
    admin,
    webhooks,
    support,
)
router = APIRouter(include_in_schema=False)
for _area in _AREAS:
    router.include_router(_area.router)

__all__ = [
    "admin",
    "connection",
    "connection_actions",
    "connection_oauth",
    "integrations",
    "live",
    "occasion_new",
    "occasion_settings",
    "router",
    "sign_in",
    "support",
    "sync_log",
    "webhooks",
]
