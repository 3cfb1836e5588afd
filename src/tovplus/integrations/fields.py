"""Typed declarations of an adapter's config and secret fields, and their checks."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tovplus.errors import FieldIssue
from tovplus.integrations.urls import check_url

#: Longest value any string-like field may hold, whatever its declaration says.
MAX_VALUE_LENGTH = 4096
#: Most items any ``string_list`` field may hold, whatever its declaration says.
MAX_LIST_ITEMS = 5000


class FieldType(StrEnum):
    STRING = "string"
    URL = "url"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    ENUM = "enum"
    #: A JSON list of non-blank strings (e.g. ids); ``max_length`` bounds each item, ``max_items``
    #: the list; an empty list is refused (leave the field out instead).
    STRING_LIST = "string_list"


_TEXT_TYPES = frozenset({FieldType.STRING, FieldType.URL, FieldType.ENUM})


@dataclass(frozen=True, slots=True)
class Field:
    """One declared input of an adapter: a config value or a secret.

    ``pattern`` (a full-match regular expression), ``min_length`` and ``max_length``
    constrain strings; ``minimum``/``maximum`` constrain integers; ``choices`` lists
    the values of an ``enum``; ``default`` is what the adapter assumes when unset.
    ``max_items`` bounds a ``string_list``.
    ``trim`` (text fields, on by default): a value of only whitespace is blank, so a
    required field reports it as ``required``, as if it were absent; declare ``trim=False``
    for a field where whitespace alone is a value.
    """

    key: str
    label: str
    type: FieldType = FieldType.STRING
    required: bool = False
    help: str | None = None
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    pattern_message: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    default: str | int | bool | None = None
    trim: bool = True
    max_items: int | None = None
    _compiled: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", self.key):
            raise ValueError(f"field key {self.key!r} must be snake_case")
        if (self.type is FieldType.ENUM) != bool(self.choices):
            raise ValueError(f"field {self.key!r}: choices go with type enum, and only with it")
        if self.pattern is not None:
            object.__setattr__(self, "_compiled", re.compile(self.pattern))

    def is_blank(self, value: Any) -> bool:
        """True when ``value`` is absent, null or empty, or (a ``trim`` text field) only whitespace."""
        if is_unset(value):
            return True
        return self.trim and self.type in _TEXT_TYPES and isinstance(value, str) and not value.strip()

    def describe(self, *, secret: bool = False) -> dict[str, Any]:
        """The public description of the field, as the catalog shows it (a secret field's
        declared limits are not shown: they would only narrow a guess)."""
        described = {
            "key": self.key,
            "label": self.label,
            "type": self.type.value,
            "required": self.required,
            "help": self.help,
            "choices": list(self.choices) if self.choices else None,
            "max_length": self.max_length,
        }
        if secret:
            del described["max_length"]
        return described

    def check(self, value: Any, path: str, *, allow_private_urls: bool) -> FieldIssue | None:
        """Check one present (non-empty) value against the declaration."""
        if self.type is FieldType.BOOLEAN:
            if not isinstance(value, bool):
                return FieldIssue(path, "invalid_type", f"{self.label} must be true or false.")
            return None
        if self.type is FieldType.INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                return FieldIssue(path, "invalid_type", f"{self.label} must be a whole number.")
            if self.minimum is not None and value < self.minimum:
                return FieldIssue(path, "too_small", f"{self.label} must be at least {self.minimum}.")
            if self.maximum is not None and value > self.maximum:
                return FieldIssue(path, "too_large", f"{self.label} must be at most {self.maximum}.")
            return None
        if self.type is FieldType.STRING_LIST:
            return self._check_list(value, path, allow_private_urls=allow_private_urls)
        if not isinstance(value, str):
            return FieldIssue(path, "invalid_type", f"{self.label} must be text.")
        return self._check_text(value, path, allow_private_urls=allow_private_urls)

    def _check_list(self, value: Any, path: str, *, allow_private_urls: bool) -> FieldIssue | None:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return FieldIssue(path, "invalid_type", f"{self.label} must be a list of text values.")
        if not value:
            return FieldIssue(path, "too_short", f"{self.label} must list at least one value.")
        most = min(self.max_items or MAX_LIST_ITEMS, MAX_LIST_ITEMS)
        if len(value) > most:
            return FieldIssue(path, "too_long", f"{self.label} may list at most {most} values.")
        for index, item in enumerate(value):
            if not item.strip():
                return FieldIssue(f"{path}.{index}", "required", f"{self.label} must not hold a blank value.")
            issue = self._check_text(item, f"{path}.{index}", allow_private_urls=allow_private_urls)
            if issue:
                return issue
        return None

    def _check_text(self, value: str, path: str, *, allow_private_urls: bool) -> FieldIssue | None:
        longest = min(self.max_length or MAX_VALUE_LENGTH, MAX_VALUE_LENGTH)
        if len(value) > longest:
            return FieldIssue(path, "too_long", f"{self.label} must be at most {longest} characters.")
        if self.min_length is not None and len(value) < self.min_length:
            return FieldIssue(
                path, "too_short", f"{self.label} must be at least {self.min_length} characters."
            )
        if self.type is FieldType.ENUM and self.choices and value not in self.choices:
            return FieldIssue(
                path, "invalid_choice", f"{self.label} must be one of: {', '.join(self.choices)}."
            )
        if self.type is FieldType.URL:
            problem = check_url(value, allow_private=allow_private_urls)
            if problem:
                return FieldIssue(path, "invalid_url", problem)
        if self._compiled is not None and not self._compiled.fullmatch(value):
            return FieldIssue(
                path, "invalid_format", self.pattern_message or f"{self.label} has the wrong format."
            )
        return None


def is_unset(value: Any) -> bool:
    """A value counts as unset when it is absent, null or an empty string."""
    return value is None or value == ""


def check_fields(
    declared: tuple[Field, ...],
    values: Mapping[str, Any],
    prefix: str,
    *,
    allow_private_urls: bool,
) -> tuple[list[FieldIssue], list[FieldIssue]]:
    """Check ``values`` against ``declared`` fields: returns ``(errors, warnings)``.

    Missing required fields (a blank value counts as missing, see ``Field.trim``) and
    malformed values are errors; keys that no field declares (left behind by an older
    adapter version) are warnings. Other values are judged as given (and stored), so
    whitespace around a value still meets the field's pattern and URL checks.
    """
    errors: list[FieldIssue] = []
    warnings: list[FieldIssue] = []
    known = {f.key for f in declared}
    for f in declared:
        value = values.get(f.key)
        path = f"{prefix}.{f.key}"
        if f.required and f.is_blank(value):
            errors.append(FieldIssue(path, "required", f"{f.label} is required."))
            continue
        if is_unset(value):
            continue
        issue = f.check(value, path, allow_private_urls=allow_private_urls)
        if issue:
            errors.append(issue)
    for key in sorted(set(values) - known):
        warnings.append(
            FieldIssue(f"{prefix}.{key}", "unknown_field", f"{key!r} is not used by this integration.")
        )
    return errors, warnings
