"""A connection's label: the planner's own name for it ("Invitations — Kyiv print shop").

Optional, at most :data:`MAX_LABEL_LENGTH` characters of plain text; blank means none. Shown on
cards and pages beside the adapter's name, searched on the admin page, and typed to confirm a
revoke when there is one.
"""

from __future__ import annotations

import unicodedata

from tovplus.errors import FieldIssue, InvalidInput

MAX_LABEL_LENGTH = 80


def _bad(code: str, message: str) -> InvalidInput:
    return InvalidInput(message, fields=[FieldIssue("label", code, message)])


def check_label(value: object) -> str | None:
    """The label to store for ``value`` (``None`` for blank); 422 ``label`` for bad input."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad("invalid_type", "The label must be text.")
    label = " ".join(value.split())
    if not label:
        return None
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs"} for ch in label):
        raise _bad("invalid", "The label may hold only plain, printable text.")
    if len(label) > MAX_LABEL_LENGTH:
        raise _bad("too_long", f"Keep the label to {MAX_LABEL_LENGTH} characters or fewer.")
    return label


def display_name(adapter_name: str, label: str | None) -> str:
    """How a page names a connection: its label when it has one, else the adapter's name."""
    return label or adapter_name
