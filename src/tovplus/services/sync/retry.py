"""When runs happen again: the interval between scheduled syncs, the delays between retries
(never shorter than the partner's ``Retry-After``), and the words a waiting run is shown with."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from tovplus.integrations.contract import Adapter
from tovplus.settings import Settings

#: Jitter applied to each retry delay: the delay is multiplied by a factor in this range.
JITTER = (0.8, 1.2)


def sync_interval(settings: Settings, adapter: Adapter, override_seconds: int | None) -> timedelta:
    """Time between scheduled syncs: the connection's override, else the setting, else the adapter's."""
    if override_seconds:
        return timedelta(seconds=override_seconds)
    if settings.sync_interval_seconds:
        return timedelta(seconds=settings.sync_interval_seconds)
    return adapter.default_sync_interval


def retry_delay(settings: Settings, attempt: int, retry_after: float | None = None) -> float | None:
    """Seconds to wait after failed attempt number ``attempt`` (1-based), or ``None``: give up.

    The backoff delay (with jitter), or the partner's ``retry_after`` when that is longer.
    """
    delays = settings.sync_retry_delays
    if attempt > len(delays):
        return None
    backoff = float(delays[attempt - 1]) * random.uniform(*JITTER)
    return max(backoff, retry_after or 0.0)


def retry_reason(message: str, *, next_attempt: int, attempts: int, at: datetime) -> str:
    """The health reason of a run waiting to retry, e.g. "The printer answered HTTP 500.
    Retrying — attempt 2 of 4, next at 09:06:12 UTC." """
    clock = at.astimezone(UTC).strftime("%H:%M:%S UTC")
    sentence = message.strip()
    if sentence and sentence[-1] not in ".!?":
        sentence += "."
    return f"{sentence} Retrying — attempt {next_attempt} of {attempts}, next at {clock}.".strip()


def paused_reason(failures: int) -> str:
    """The health reason of a connection whose schedule paused after ``failures`` failed runs."""
    return (
        f"Scheduled syncs are paused after {failures} failed syncs in a row. "
        "Fix the cause, then press “Sync now” to resume them."
    )


def max_attempts(settings: Settings) -> int:
    """Attempts a run gets in all: the first and one per retry delay."""
    return len(settings.sync_retry_delays) + 1


def human_delay(seconds: float) -> str:
    """A delay as people read it in the activity log: ``0.5 s``, ``30 s``, ``5 min``, ``2.0 h``."""
    if seconds < 1:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
