"""Connection health: validation against the adapter and the health shown for a connection.

A level-0 domain: it imports no other service domain (sync and connections import it).
"""

from tovplus.services.health.evaluate import (
    NOT_INSTALLED_REASON,
    ScopedConfig,
    drift_reasons,
    effective_health,
    scope_of,
    validation_of,
)

__all__ = [
    "NOT_INSTALLED_REASON",
    "ScopedConfig",
    "drift_reasons",
    "effective_health",
    "scope_of",
    "validation_of",
]
