"""Reading a callback's body: strict JSON, and the characters no database stores."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tovplus.errors import MalformedRequest


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def parse_body(body: bytes) -> Any:
    """The JSON body, or :class:`MalformedRequest` (400). NaN and Infinity are not JSON."""
    try:
        text = body.decode(json.detect_encoding(body))  # strict: no lone surrogates from raw bytes
        if not text.strip():
            raise MalformedRequest("The request body is empty; send a JSON object.", code="malformed_json")
        return _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise MalformedRequest("The request body is not valid JSON.", code="malformed_json") from None


def unstorable(value: Any, depth: int = 0) -> bool:
    """True when a string in ``value`` holds NUL or an unpaired surrogate (no database takes them)."""
    if depth > 64:
        return False
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, Mapping):
        return any(unstorable(k, depth + 1) or unstorable(v, depth + 1) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(unstorable(v, depth + 1) for v in value)
    return False
