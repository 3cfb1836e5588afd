"""When runs happen again: the interval between scheduled syncs and the delays between retries."""

from __future__ import annotations

import random
from datetime import timedelta

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


def retry_delay(settings: Settings, attempt: int) -> float | None:
    """Seconds to wait after failed attempt number ``attempt`` (1-based), or ``None``: give up."""
    delays = settings.sync_retry_delays
    if attempt > len(delays):
        return None
    return float(delays[attempt - 1]) * random.uniform(*JITTER)


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
