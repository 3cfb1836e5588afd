"""The activity entry's redaction: its fast path for strings keeps the general rules exactly."""

from __future__ import annotations

from typing import Any

from tovplus.integrations.redaction import MASK, redact_details


def _nested(levels: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(levels):
        value = {"k": value}
    return value


def test_strings_at_the_depth_limit_are_kept_and_below_it_cut_off():
    assert redact_details(_nested(8, "kept")) == _nested(8, "kept")
    assert redact_details(_nested(9, "deep")) == _nested(9, "…")


def test_string_values_are_scrubbed_truncated_and_secret_keys_masked():
    entry = {
        "summary": "Order 1 is now printed",
        "details": {
            "order_id": "o-1",
            "note": "key tov_ab_0123456789abcdef here",
            "api_key": "plain",
            "token": None,
            "long": "x" * 600,
        },
    }
    out = redact_details(entry)
    assert out["summary"] == "Order 1 is now printed"
    details = out["details"]
    assert details["order_id"] == "o-1"
    assert details["note"] == f"key {MASK} here"
    assert details["api_key"] == MASK
    assert details["token"] is None
    assert details["long"] == "x" * 500 + "…"
