"""docs/webhooks.md lists every event type of the catalog and every endpoint operation."""

from __future__ import annotations

from pathlib import Path

from tovplus.services import webhooks

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def test_every_event_type_is_documented():
    text = DOC.read_text()
    missing = [t for t in webhooks.EVENT_TYPES if f"`{t}`" not in text]
    assert missing == [], f"docs/webhooks.md does not list {missing}"
    for operation in ("rotate-secret", "/test", "/deliveries", "/resend", "/recover"):
        assert operation in text
