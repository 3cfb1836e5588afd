"""The pages' routes, one module per page or area; :data:`router` holds them all."""

from __future__ import annotations

from fastapi import APIRouter

from tovplus.web.pages import admin, connection, integrations, sign_in, support, webhooks

router = APIRouter(include_in_schema=False)
for _area in (sign_in, integrations, connection, admin, webhooks, support):
    router.include_router(_area.router)

__all__ = ["admin", "connection", "integrations", "router", "sign_in", "support", "webhooks"]
