"""The planner's and the admin's web pages, served by the same process as the API."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from tovplus.web.browser_errors import install_browser_errors
from tovplus.web.pages import router
from tovplus.web.render import STATIC_DIR


def install(app: FastAPI) -> None:
    """Add the pages, their static files (CSS, JS, icons shipped in the package) and the
    browsers' error pages to ``app``."""
    app.include_router(router)
    install_browser_errors(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
