"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

#: JSON everywhere, JSONB on PostgreSQL.
JSONType = JSON().with_variant(JSONB(), "postgresql")

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in, timezone-aware UTC datetimes out (SQLite stores naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # defensive: raw SQLite text
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


_id_lock = threading.Lock()
_last_id = (0, 0)


def new_id(prefix: str) -> str:
    """A time-ordered opaque id: ``<prefix>_`` + 10 chars of milliseconds + 16 random chars.

    Ids of one prefix sort by creation time (to the millisecond), so ``id`` alone is a
    stable pagination key. Within one process ids are strictly increasing, even inside
    one millisecond (the random part is incremented, as in monotonic ULIDs), so entries
    written in one transaction keep their order.
    """
    global _last_id
    millis = int(time.time() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    with _id_lock:
        last_millis, last_rand = _last_id
        if millis <= last_millis:
            millis, rand = last_millis, last_rand + 1
            if rand >= 1 << 80:
                millis, rand = millis + 1, 0
        _last_id = (millis, rand)
    chars = []
    for _ in range(16):
        chars.append(_CROCKFORD[rand & 31])
        rand >>= 5
    stamp = []
    for _ in range(10):
        stamp.append(_CROCKFORD[millis & 31])
        millis >>= 5
    return f"{prefix}_{''.join(reversed(stamp))}{''.join(reversed(chars))}".lower()
