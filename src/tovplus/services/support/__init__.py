"""Support: what staff use to repair and explain an integration.

* :mod:`.diagnostics` — the redacted diagnostics document of one connection.
* :mod:`.suspension` — the adapter kill switch: suspend every enabled connection of an adapter,
  resume exactly those (``services.health.is_suspended`` is what other domains check).
"""

from tovplus.services.support.diagnostics import connection_diagnostics
from tovplus.services.support.suspension import (
    MAX_REASON_CHARS,
    AdapterSuspension,
    resume_integration,
    suspend_integration,
    suspension_overview,
)

__all__ = [
    "MAX_REASON_CHARS",
    "AdapterSuspension",
    "connection_diagnostics",
    "resume_integration",
    "suspend_integration",
    "suspension_overview",
]
