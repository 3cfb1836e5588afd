"""Readiness: the database answers and its schema is at the newest migration."""

from __future__ import annotations

from sqlalchemy import text

from tovplus.db.migrate import is_current
from tovplus.runtime import Runtime


def readiness(rt: Runtime) -> tuple[bool, dict[str, str]]:
    checks: dict[str, str] = {}
    try:
        with rt.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means not ready
        checks["database"] = f"unavailable: {type(exc).__name__}"
        return False, checks
    try:
        checks["migrations"] = "current" if is_current(rt.db.engine) else "pending"
    except Exception as exc:
        checks["migrations"] = f"unknown: {type(exc).__name__}"
    return checks["migrations"] == "current", checks
