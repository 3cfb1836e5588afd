"""Helpers for adapters that read partner JSON: collect field issues, then reject once.

reader = PayloadReader(payload)
order_id = reader.string("order_id", max_length=200)
status = reader.string("status")
reader.finish()          # raises CallbackRejected listing every problem found
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tovplus.errors import CallbackRejected, FieldIssue


def parse_timestamp(value: str) -> datetime | None:
    """Parse an RFC 3339 timestamp with a zone; ``None`` when it is not one."""
    if not isinstance(value, str) or len(value) > 64 or "T" not in value.upper():
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, to the second."""
    if value.tzinfo is UTC and value.year >= 1000:
        # every stored time is already UTC; ``isoformat`` is a few times faster than
        # ``astimezone`` + ``strftime``, and a list view formats 100+ of them (issue 20)
        return value.replace(microsecond=0, tzinfo=None).isoformat() + "Z"
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PayloadReader:
    """Reads fields from a JSON object, collecting :class:`FieldIssue` s instead of raising early."""

    def __init__(self, payload: Any, *, prefix: str = "payload", allow_extra: bool = False) -> None:
        self.issues: list[FieldIssue] = []
        self._prefix = prefix
        self._allow_extra = allow_extra
        self._seen: set[str] = set()
        if isinstance(payload, Mapping):
            self._data: Mapping[str, Any] = payload
        else:
            self._data = {}
            self.issues.append(FieldIssue(prefix, "invalid_type", "The payload must be a JSON object."))

    def _path(self, key: str) -> str:
        return f"{self._prefix}.{key}"

    def _get(self, key: str, *, required: bool) -> Any:
        self._seen.add(key)
        value = self._data.get(key)
        if value is None and required:
            self.issues.append(FieldIssue(self._path(key), "required", f"{key} is required."))
        return value

    def literal(self, key: str, *expected: str) -> str:
        """A string that must be one of ``expected``."""
        value = self._get(key, required=True)
        if value is not None and value not in expected:
            self.issues.append(
                FieldIssue(self._path(key), "unsupported", f"{key} must be one of: {', '.join(expected)}.")
            )
        return value if isinstance(value, str) else ""

    def string(self, key: str, *, max_length: int = 256) -> str:
        """A required, non-empty string of at most ``max_length`` characters."""
        value = self._get(key, required=True)
        return self._check_string(key, value, max_length=max_length) if value is not None else ""

    def optional_string(self, key: str, *, max_length: int = 256) -> str | None:
        """A string or null/absent."""
        value = self._get(key, required=False)
        if value is None:
            return None
        return self._check_string(key, value, max_length=max_length)

    def integer(self, key: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
        """A required whole number (not a boolean), within ``minimum``/``maximum`` when given."""
        value = self._get(key, required=True)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            self.issues.append(FieldIssue(self._path(key), "invalid_type", f"{key} must be a whole number."))
            return 0
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            low = "" if minimum is None else f" from {minimum}"
            high = "" if maximum is None else f" to {maximum}"
            self.issues.append(FieldIssue(self._path(key), "out_of_range", f"{key} must be{low}{high}."))
        return value

    def timestamp(self, key: str) -> datetime:
        """A required RFC 3339 timestamp."""
        value = self._get(key, required=True)
        if value is None:
            return datetime.min.replace(tzinfo=UTC)
        parsed = parse_timestamp(value) if isinstance(value, str) else None
        if parsed is None:
            self.issues.append(
                FieldIssue(
                    self._path(key), "invalid_format", f"{key} must be an RFC 3339 timestamp with a zone."
                )
            )
            return datetime.min.replace(tzinfo=UTC)
        return parsed

    def _check_string(self, key: str, value: Any, *, max_length: int = 256) -> str:
        if not isinstance(value, str):
            self.issues.append(FieldIssue(self._path(key), "invalid_type", f"{key} must be a string."))
            return ""
        if not value.strip():
            self.issues.append(FieldIssue(self._path(key), "required", f"{key} must not be empty."))
        elif len(value) > max_length:
            self.issues.append(
                FieldIssue(self._path(key), "too_long", f"{key} must be at most {max_length} characters.")
            )
        return value

    def finish(self) -> None:
        """Raise :class:`CallbackRejected` if anything was wrong (or unexpected keys were sent)."""
        if not self._allow_extra:
            for key in sorted(set(map(str, self._data)) - self._seen)[:20]:
                self.issues.append(FieldIssue(self._path(key), "unexpected", f"{key} is not expected here."))
        if self.issues:
            raise CallbackRejected("The payload was rejected.", fields=self.issues)
