"""Cursor pagination over time-ordered ids (``?limit=`` and ``?cursor=``)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from tovplus.errors import FieldIssue, InvalidInput

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
T = TypeVar("T")
#: Cursors carry the last id of a page; ids are short and plain.
_CURSOR_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)["after"]
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        value = None
    if not isinstance(value, str) or not _CURSOR_ID.fullmatch(value):
        raise InvalidInput(
            "The cursor is not valid.", fields=[FieldIssue("cursor", "invalid", "Unknown cursor.")]
        )
    return value


def check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1 or limit > MAX_LIMIT:
        raise InvalidInput(
            f"limit must be between 1 and {MAX_LIMIT}.",
            fields=[FieldIssue("limit", "out_of_range", f"Use 1 to {MAX_LIMIT}.")],
        )
    return limit


def paginate(
    query: Select[Any],
    id_column: InstrumentedAttribute[str],
    *,
    limit: int | None,
    cursor: str | None,
    newest_first: bool = False,
) -> tuple[Select[Any], int]:
    """Add the cursor condition, ordering and a ``limit + 1`` fetch to ``query``."""
    size = check_limit(limit)
    if cursor:
        after = decode_cursor(cursor)
        query = query.where(id_column < after if newest_first else id_column > after)
    query = query.order_by(id_column.desc() if newest_first else id_column.asc()).limit(size + 1)
    return query, size


def page_of(rows: Sequence[T], size: int, id_of: Any) -> Page[T]:
    """Cut the ``limit + 1`` rows back to ``size`` and compute the next cursor."""
    items = list(rows[:size])
    next_cursor = encode_cursor(id_of(items[-1])) if len(rows) > size and items else None
    return Page(items, next_cursor)
