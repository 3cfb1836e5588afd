"""The one id generator: time-ordered, opaque, strictly increasing within a process.

An id is ``<prefix>_`` + 10 Crockford base-32 characters of Unix milliseconds + 16 of a
80-bit counter that starts at a random value each millisecond and is incremented within it
(monotonic ULIDs). So ids of one prefix sort by creation time, ``id`` alone is a stable
pagination key, and ids made in one process never repeat or go backwards, even inside one
millisecond or one batch. Ids made by two processes in the same millisecond interleave but
do not collide (80 random bits).

:func:`new_ids` takes a whole batch under one lock acquisition; the callback hot path writes
hundreds of activity rows per transaction with it. The random starts come from ``os.urandom``
read 4 KiB at a time (400 ids a read): each call releases and retakes the GIL, which on a busy
API process cost a wait for the other thread's switch interval per id (``docs/benchmarks.md``).
The pool (and the last counter) is emptied in a forked child, so two processes never share them.

:data:`ID_PATTERN` is what every id we hand out matches; :func:`is_id` tells whether a value
from a request could be one (anything else is an unknown resource, answered without a query).
"""

from __future__ import annotations

import os
import re
import threading
import time
from datetime import datetime

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_RANDOM_BITS = 80
_lock = threading.Lock()
_last = (0, 0)  # (millis, counter) of the last id handed out
_POOL_BYTES = 4096
_pool = b""  # unread os.urandom bytes (taken under _lock)
_pool_at = 0


def _forget_pool() -> None:
    """In a forked child: neither the parent's unread random bytes nor its last counter, which
    the parent goes on counting from too (the same millisecond would give the same id)."""
    global _pool, _pool_at, _last
    _pool, _pool_at, _last = b"", 0, (0, 0)


os.register_at_fork(after_in_child=_forget_pool)

#: Every id this service hands out matches this; anything else is an unknown resource.
ID_PATTERN = r"[A-Za-z0-9_-]{1,40}"
_ID_RE = re.compile(ID_PATTERN)


def is_id(value: object) -> bool:
    """True when ``value`` could be one of our ids (so it is safe to look up)."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


#: Every pair of base-32 characters, by its 10-bit value: an id is encoded two characters a step
#: (0.8 against 1.7 µs for a counter; each request and each stored row makes one or two ids).
_PAIRS = tuple(high + low for high in _CROCKFORD for low in _CROCKFORD)
_SHIFTS = {length: tuple(range(5 * length - 10, -1, -10)) for length in (10, 16)}


def _encode(value: int, length: int) -> str:
    """``value``'s low ``5 * length`` bits as ``length`` base-32 characters (``length``: 10 or 16)."""
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in _SHIFTS[length]])


def _reserve(count: int) -> tuple[int, int]:
    """Reserve ``count`` consecutive (millis, counter) values; returns the first."""
    global _last
    global _pool, _pool_at
    millis = int(time.time() * 1000)
    with _lock:
        width = _RANDOM_BITS // 8
        if _pool_at + width > len(_pool):
            _pool, _pool_at = os.urandom(_POOL_BYTES), 0
        start = int.from_bytes(_pool[_pool_at : _pool_at + width], "big") >> 1  # room to count up
        _pool_at += width
        last_millis, last_counter = _last
        if millis <= last_millis:
            millis, start = last_millis, last_counter + 1
        if start + count >= 1 << _RANDOM_BITS:
            millis, start = millis + 1, 0
        _last = (millis, start + count - 1)
    return millis, start


def new_id(prefix: str) -> str:
    """One new id with this prefix (e.g. ``con``, ``act``)."""
    millis, counter = _reserve(1)
    return f"{prefix}_{_encode(millis, 10)}{_encode(counter, 16)}"


def new_ids(prefix: str, count: int) -> list[str]:
    """``count`` new ids, in increasing order, as :func:`new_id` would make them one by one."""
    if count <= 0:
        return []
    millis, start = _reserve(count)
    stamp = f"{prefix}_{_encode(millis, 10)}"
    return [stamp + _encode(start + offset, 16) for offset in range(count)]


def id_floor(prefix: str, when: datetime) -> str:
    """The lowest id :func:`new_id` could make at ``when``: ids of ``prefix`` made before it sort below."""
    millis = max(0, int(when.timestamp() * 1000))
    return f"{prefix}_{_encode(millis, 10)}{'0' * 16}"
