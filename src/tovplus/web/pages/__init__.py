"""The pages' routes, one module per page or area; :data:`router` holds them all."""

from __future__ import annotations

from fastapi import APIRouter

from tovplus.web.pages import admin, connection, connection_actions, integrations, sign_in

router = APIRouter(include_in_schema=False)
for _area in (sign_in, integrations, connection, connection_actions, admin):
    router.include_router(_area.router)

__all__ = ["admin", "connection", "connection_actions", "integrations", "router", "sign_in"]
