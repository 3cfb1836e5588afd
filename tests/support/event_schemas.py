"""Every webhook payload the suite emits is checked against its schema in the event catalog.

Installed for the whole session by ``tests/conftest.py``: an emitter whose payload does not match
(a missing ``data`` key, a wrong type, a type missing from the catalog) fails the test that made it.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs

from tovplus.services.webhooks import CATALOG, set_payload_check

VALIDATORS = {e.type: jsonschema_rs.Draft202012Validator(e.schema(), validate_formats=True) for e in CATALOG}
#: Every payload checked so far (type → count), so a test can see the check ran.
CHECKED: dict[str, int] = {}


def check_payload(payload: dict[str, Any]) -> None:
    """Raise AssertionError unless ``payload`` validates against its type's schema."""
    validator = VALIDATORS.get(payload.get("type", ""))
    assert validator is not None, f"event type {payload.get('type')!r} is not in the catalog"
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(payload)]
    assert not errors, f"{payload['type']} payload does not match its schema: {errors}"
    CHECKED[payload["type"]] = CHECKED.get(payload["type"], 0) + 1


def install() -> None:
    """Check every emitted payload from now on."""
    set_payload_check(check_payload)
