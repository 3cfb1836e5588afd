"""Connection health: validation against the adapter and the health shown for a connection.

It sits above ``webhooks`` (a health transition emits ``integration.health_changed``) and below
``sync`` and ``connections``, which import it.
"""

from tovplus.services.health.evaluate import (
    NOT_INSTALLED_REASON,
    RECHECK_REASON,
    ScopedConfig,
    drift_reasons,
    effective_health,
    recheck_reasons,
    scope_of,
    validation_of,
)
from tovplus.services.health.transitions import HEALTH_CHANGED_EVENT, health_changed

__all__ = [
    "HEALTH_CHANGED_EVENT",
    "NOT_INSTALLED_REASON",
    "RECHECK_REASON",
    "ScopedConfig",
    "drift_reasons",
    "effective_health",
    "health_changed",
    "recheck_reasons",
    "scope_of",
    "validation_of",
]
