"""What every check shares: the adapter under test with its samples, and how issues and records are judged."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from tovplus.errors import FieldIssue
from tovplus.integrations.contract import Adapter, RecordUpsert
from tovplus.testing.fake_partner import FakePartner
from tovplus.testing.junk import shorten
from tovplus.testing.oauth import FakeAuthorizationServer, partner_http

#: The prefixes a ``FieldIssue.field`` may start with.
FIELD_PREFIXES = ("config.", "secrets.", "scope.", "connection", "payload")
#: Values shorter than this are not searched for in outputs (they would match by chance).
MIN_SEARCHABLE_SECRET = 6
#: The prefix of the access and refresh tokens the checks hand an OAuth2 adapter.
CANARY_PREFIX = "conformance-canary"


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
    #: Token value -> what it is ("access_token", "refresh_token"): every token an OAuth2 run was given.
    canaries: dict[str, str] = field(default_factory=dict)

    def note(self, check: str, text: str) -> None:
        """Leave a note for ``check``'s line in the report."""
        self.notes.setdefault(check, []).append(text)

    @property
    def oauth(self) -> bool:
        """Whether the adapter authenticates with OAuth2 (it gets tokens, not secrets)."""
        return self.adapter.oauth2 is not None

    @property
    def searchable_secrets(self) -> list[str]:
        """The sample secret values long enough to search for in outputs, and the tokens handed out."""
        values = [v for v in self.secrets.values() if isinstance(v, str) and len(v) >= MIN_SEARCHABLE_SECRET]
        return [*values, *self.canaries]

    def leaks(self, text: str) -> list[str]:
        """The secret fields (or ``access_token`` / ``refresh_token``) whose value appears in ``text``."""
        found = [k for k, v in self.secrets.items() if len(v) >= MIN_SEARCHABLE_SECRET and v in text]
        return found + sorted({label for value, label in self.canaries.items() if value in text})

    @contextmanager
    def http(self, partner: FakePartner) -> Iterator[tuple[httpx.Client, str | None]]:
        """``(ctx.http, ctx.access_token)`` for one run against ``partner``: the plain client for an
        api-key adapter; for an OAuth2 one, a client sending canary tokens of a fresh fake server."""
        if not self.oauth:
            with partner.client() as http:
                yield http, None
            return
        server = FakeAuthorizationServer(partner, token_prefix=CANARY_PREFIX)
        try:
            with partner_http(server, oauth=True) as pair:
                self._remember(server)
                yield pair
        finally:
            self._remember(server)

    def _remember(self, server: FakeAuthorizationServer) -> None:
        for tokens in server.issued:
            self.canaries[tokens.access_token] = "access_token"
            self.canaries[tokens.refresh_token] = "refresh_token"


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
