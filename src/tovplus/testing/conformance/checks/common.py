"""What every check shares: the adapter under test with its samples, and how issues and records are judged."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tovplus.errors import FieldIssue
from tovplus.integrations.contract import Adapter, RecordUpsert
from tovplus.testing.fake_partner import FakePartner
from tovplus.testing.junk import shorten

#: The prefixes a ``FieldIssue.field`` may start with.
FIELD_PREFIXES = ("config.", "secrets.", "scope.", "connection", "payload")
#: Values shorter than this are not searched for in outputs (they would match by chance).
MIN_SEARCHABLE_SECRET = 6


@dataclass
class Subject:
    """The adapter under test, its samples, and the notes the checks leave for the report."""

    adapter: Adapter
    config: dict[str, Any]
    secrets: dict[str, str]
    callback: Any
    partner: Callable[[], FakePartner] | None
    examples: int
    notes: dict[str, list[str]] = field(default_factory=dict)

    def note(self, check: str, text: str) -> None:
        """Leave a note for ``check``'s line in the report."""
        self.notes.setdefault(check, []).append(text)

    @property
    def searchable_secrets(self) -> list[str]:
        """The sample secret values long enough to search for in outputs."""
        return [v for v in self.secrets.values() if isinstance(v, str) and len(v) >= MIN_SEARCHABLE_SECRET]

    def leaks(self, text: str) -> list[str]:
        """The secret fields whose value appears in ``text``."""
        return [k for k, v in self.secrets.items() if len(v) >= MIN_SEARCHABLE_SECRET and v in text]


def dump(value: Any) -> str:
    """``value`` as JSON text, whatever it holds (searched for secrets)."""
    return json.dumps(value, default=repr, ensure_ascii=False)


def issue_problems(issues: Iterable[Any], where: str) -> list[str]:
    """What is wrong with issues a hook produced (not ``FieldIssue``s, badly named fields, no message)."""
    problems = []
    for issue in issues:
        if not isinstance(issue, FieldIssue):
            problems.append(f"{where} produced {shorten(issue)}, not a FieldIssue")
            continue
        if not (issue.field and isinstance(issue.field, str) and issue.field.startswith(FIELD_PREFIXES)):
            problems.append(
                f"{where} produced an issue for field {issue.field!r}: name it 'config.<key>', "
                "'secrets.<key>', 'scope...' or 'connection'"
            )
        if not issue.code or not issue.message:
            problems.append(f"{where} produced an issue without a code or a message: {issue!r}")
    return problems


def issue_text(issue: Any) -> str:
    """One issue as ``field code: message``."""
    if isinstance(issue, FieldIssue):
        return f"{issue.field} {issue.code}: {issue.message}"
    return shorten(issue)


def record_problems(records: Any, where: str) -> list[str]:
    """What is wrong with records an adapter returned (types, lengths, JSON-ability)."""
    if isinstance(records, str | bytes) or not isinstance(records, Sequence):
        return [f"{where}: records must be a list of RecordUpsert, got {type(records).__name__}"]
    problems = []
    for record in records:
        if not isinstance(record, RecordUpsert):
            problems.append(f"{where}: {shorten(record)} is not a RecordUpsert")
            continue
        if not isinstance(record.kind, str) or not 0 < len(record.kind) <= 64:
            problems.append(f"{where}: record kind {record.kind!r} must be 1-64 characters")
        if not isinstance(record.external_id, str) or not 0 < len(record.external_id) <= 200:
            problems.append(f"{where}: external_id {shorten(record.external_id)} must be 1-200 characters")
        if not isinstance(record.data, Mapping):
            problems.append(f"{where}: record data must be a JSON object, got {type(record.data).__name__}")
        else:
            try:
                json.dumps(record.data, allow_nan=False)
            except (TypeError, ValueError) as exc:
                problems.append(f"{where}: record {record.external_id!r} data is not plain JSON ({exc})")
        stamp = record.updated_at
        if stamp is not None and (not isinstance(stamp, datetime) or stamp.tzinfo is None):
            problems.append(f"{where}: updated_at must be a timezone-aware datetime or None, got {stamp!r}")
    return problems
