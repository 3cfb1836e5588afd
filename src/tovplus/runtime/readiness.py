"""Readiness: the database answers, its schema is at the newest migration, and the keyring opens
every key id the stored secrets name (that last check is re-read at most every
:data:`KEY_CHECK_SECONDS` per runtime: it scans the secrets' key ids, and probes come often)."""

from __future__ import annotations

import logging
import threading
import time
import weakref

from sqlalchemy import text

from tovplus.db.migrate import is_current
from tovplus.runtime import Runtime
from tovplus.runtime.master_keys import missing_key_ids

log = logging.getLogger(__name__)

#: How long one answer of the key check is reused.
KEY_CHECK_SECONDS = 5.0
_key_checks: weakref.WeakKeyDictionary[Runtime, tuple[float, list[str]]] = weakref.WeakKeyDictionary()
_key_checks_lock = threading.Lock()


def readiness(rt: Runtime) -> tuple[bool, dict[str, str]]:
    """``(ready, checks)``: each check's verdict by name; ready when every one is fine."""
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
    keys_open = False
    try:
        missing = _missing_keys(rt)
        keys_open = not missing
        # counted, not named: /readyz is public; the log names them
        checks["secret_keys"] = (
            "ok" if keys_open else f"missing {len(missing)} key(s) the stored secrets name"
        )
    except Exception as exc:
        checks["secret_keys"] = f"unknown: {type(exc).__name__}"
    return checks["migrations"] == "current" and keys_open, checks


def _missing_keys(rt: Runtime) -> list[str]:
    now = time.monotonic()
    with _key_checks_lock:
        cached = _key_checks.get(rt)
    if cached is not None and now - cached[0] < KEY_CHECK_SECONDS:
        return cached[1]
    missing = missing_key_ids(rt.db, rt.keyring)
    with _key_checks_lock:
        _key_checks[rt] = (now, missing)
    if missing and (cached is None or cached[1] != missing):
        log.error(
            "not ready: the stored secrets name key id(s) %s, which this process's keyring lacks; "
            "supply them in TOVPLUS_SECRET_KEYS or the key file and restart",
            ", ".join(missing),
        )
    return missing
