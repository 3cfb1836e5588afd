"""Per-key token buckets (in process memory).

A bucket holds at most ``burst`` tokens and refills at ``rate_per_minute / 60``
tokens a second; each allowed event takes one. :meth:`RateLimiter.acquire`
returns ``0.0`` when the event may go ahead, else the seconds until a token is
free (what ``Retry-After`` should say); :meth:`RateLimiter.peek` asks the same without
taking. The clock is injectable, so tests can hold time still.

Limits are per process: with N API processes a key gets at most N times the
rate. That is the intent (they protect each process and its writer), and it
keeps the hot path free of database round trips.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


def whole_seconds(wait: float) -> int:
    """A wait from :meth:`RateLimiter.acquire` in whole seconds for ``Retry-After`` (0 = none)."""
    return 0 if wait <= 0 else max(1, math.ceil(wait))


class RateLimiter:
    """Token buckets keyed by a string (a connection id); thread-safe."""

    def __init__(
        self,
        rate_per_minute: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst if burst is not None else max(1.0, rate_per_minute))
        self._clock = clock
        self._max_keys = max_keys
        #: key -> [tokens, last refill time]
        self._buckets: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens from ``key``'s bucket: ``0.0`` if allowed, else seconds to wait."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self._max_keys:
                    self._prune(now)
                bucket = self._buckets[key] = [self.burst, now]
            else:
                bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
                bucket[1] = now
            if bucket[0] >= cost:
                bucket[0] -= cost
                return 0.0
            return (cost - bucket[0]) / self.rate

    def retry_after(self, key: str, cost: float = 1.0) -> int:
        """Like :meth:`acquire`, rounded up to whole seconds for ``Retry-After`` (0 = allowed)."""
        return whole_seconds(self.acquire(key, cost))

    def peek(self, key: str, cost: float = 1.0) -> float:
        """Like :meth:`acquire`, but takes nothing: ``0.0`` when ``cost`` tokens are there."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            tokens = (
                self.burst if bucket is None else min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
            )
        return 0.0 if tokens >= cost else (cost - tokens) / self.rate

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled completely (they behave like new ones)."""
        full = [
            k
            for k, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.rate >= self.burst
        ]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self._max_keys:  # still full: drop the oldest half
            for k in sorted(self._buckets, key=lambda k: self._buckets[k][1])[: self._max_keys // 2]:
                del self._buckets[k]
