"""Politeness toward partners: the limits an adapter declares and the gate that keeps them.

An adapter may declare ``partner_limits = PartnerLimits(requests_per_second=5, max_concurrent=2)``.
The framework then wraps the HTTP client it hands to ``sync`` (``SyncContext.http``) in a
:class:`PoliteTransport` sharing one :class:`PartnerGate` per adapter in the process, so every
connection of that adapter, on every thread, stays within the limits without the adapter doing
anything. Requests wait (they are not refused) until they may go.

The rate is kept two ways: at most ``burst`` requests start within any ``window`` seconds
(``burst = max(1, floor(requests_per_second))``, ``window = burst / requests_per_second``, with
:data:`WINDOW_MARGIN` of slack), and starts are spaced at least ``window / burst`` apart, so
requests arrive evenly and network jitter cannot bunch a second's worth into the partner's next.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import httpx

#: The window is this much longer than the declared rate strictly needs (network jitter).
WINDOW_MARGIN = 1.1


@dataclass(frozen=True, slots=True)
class PartnerLimits:
    """How much one partner takes from one process: requests started per second, and at once."""

    requests_per_second: float | None = None
    max_concurrent: int | None = None

    def __post_init__(self) -> None:
        rps = self.requests_per_second
        if rps is not None and (not math.isfinite(rps) or rps <= 0):
            raise ValueError("requests_per_second must be a positive number")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")

    def describe(self) -> dict[str, float | int | None]:
        """The limits as the catalog shows them."""
        return {"requests_per_second": self.requests_per_second, "max_concurrent": self.max_concurrent}


class PartnerGate:
    """Admits requests to one partner within its :class:`PartnerLimits` (thread-safe)."""

    def __init__(
        self,
        limits: PartnerLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = limits
        self._clock, self._sleep = clock, sleep
        rps = limits.requests_per_second
        self._burst = max(1, math.floor(rps)) if rps else 0
        self._window = self._burst / rps * WINDOW_MARGIN if rps else 0.0
        self._spacing = self._window / self._burst if self._burst else 0.0
        self._started: deque[float] = deque()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(limits.max_concurrent) if limits.max_concurrent else None

    def enter(self) -> None:
        """Wait for a concurrency slot, then for the rate; pair with :meth:`leave`."""
        if self._slots is not None:
            self._slots.acquire()
        try:
            self._wait_for_rate()
        except BaseException:
            self.leave()
            raise

    def leave(self) -> None:
        """Give the concurrency slot back."""
        if self._slots is not None:
            self._slots.release()

    def _wait_for_rate(self) -> None:
        if not self._burst:
            return
        while True:
            with self._lock:
                now = self._clock()
                while self._started and now - self._started[0] >= self._window:
                    self._started.popleft()
                spaced = now - self._started[-1] if self._started else self._spacing
                if len(self._started) < self._burst and spaced >= self._spacing:
                    self._started.append(now)
                    return
                wait = self._spacing - spaced
                if len(self._started) >= self._burst:
                    wait = max(wait, self._window - (now - self._started[0]))
            self._sleep(max(wait, 0.001))


class PoliteTransport(httpx.BaseTransport):
    """Sends each request through a :class:`PartnerGate`; the body is read before the slot is freed."""

    def __init__(self, inner: httpx.BaseTransport, gate: PartnerGate) -> None:
        self._inner, self._gate = inner, gate

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._gate.enter()
        try:
            response = self._inner.handle_request(request)
            try:
                response.read()
            except BaseException:
                response.close()
                raise
            return response
        finally:
            self._gate.leave()

    def close(self) -> None:
        self._inner.close()


class PartnerGates:
    """One gate per key (an adapter's ``integration_key``) for the whole process."""

    def __init__(self) -> None:
        self._gates: dict[str, PartnerGate] = {}
        self._lock = threading.Lock()

    def get(self, key: str, limits: PartnerLimits) -> PartnerGate:
        """The key's gate, made on first use (or again when its declared limits changed)."""
        with self._lock:
            gate = self._gates.get(key)
            if gate is None or gate.limits != limits:
                gate = self._gates[key] = PartnerGate(limits)
            return gate

    def clear(self) -> None:
        """Forget every gate (tests)."""
        with self._lock:
            self._gates.clear()
