"""Connection health: validation against the adapter and the health shown for a connection.

It sits above ``webhooks`` (a health transition emits ``integration.health_changed``) and below
``sync`` and ``connections``, which import it.
"""

from tovplus.services.health.evaluate import (
    NOT_INSTALLED_REASON,
    RECHECK_REASON,
    ScopedConfig,
    authorization_of,
    authorizations,
    drift_reasons,
    effective_health,
    recheck_reasons,
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
from tovplus.services.health.transitions import HEALTH_CHANGED_EVENT, health_changed

__all__ = [
    "HEALTH_CHANGED_EVENT",
    "NOT_INSTALLED_REASON",
    "RECHECK_REASON",
    "SUSPENDED_REASON_PREFIX",
    "ScopedConfig",
    "authorization_of",
    "authorizations",
    "drift_reasons",
    "effective_health",
    "health_changed",
    "is_suspended",
    "recheck_reasons",
    "require_not_suspended",
    "scope_of",
    "suspension_reason",
    "validation_of",
    "with_suspension",
]
