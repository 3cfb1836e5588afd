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
from tovplus.services.health.suspension import (
    SUSPENDED_REASON_PREFIX,
    is_suspended,
    require_not_suspended,
    suspension_reason,
    with_suspension,
)

__all__ = [
    "NOT_INSTALLED_REASON",
    "SUSPENDED_REASON_PREFIX",
    "ScopedConfig",
    "drift_reasons",
    "effective_health",
    "is_suspended",
    "require_not_suspended",
    "scope_of",
    "suspension_reason",
    "validation_of",
    "with_suspension",
]
