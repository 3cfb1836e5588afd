"""The ``make run`` demo of honest health: a printing connection whose partner cannot be reached.

Its first scheduled sync fails at once ("Could not reach the printer at 127.0.0.1"), the
connection turns ``degraded`` while the run retries, ``failing`` when it gives up, and the admin
page counts it; after ``TOVPLUS_SYNC_PAUSE_AFTER_FAILURES`` failed runs its schedule pauses.
"""

from __future__ import annotations

from tovplus.db.states import ConnectionState
from tovplus.runtime import Runtime
from tovplus.services.auth import UserCaller
from tovplus.services.connections import ConnectionCreate, create_connection

#: Nothing listens here in ``make run``: every attempt is a refused connection.
UNREACHABLE_PARTNER_URL = "http://127.0.0.1:8199"


def seed_outage_demo(rt: Runtime, caller: UserCaller, occasion_id: str) -> None:
    """A second printing connection pointed at an address where no printer answers."""
    create_connection(
        rt,
        caller,
        occasion_id,
        ConnectionCreate(
            "printing_partner",
            config={"account_id": "unreachable-printer", "api_base_url": UNREACHABLE_PARTNER_URL},
            secrets={"api_key": "demo-printer-api-key-0001"},
            state=ConnectionState.ENABLED if rt.settings.allow_private_urls else ConnectionState.DRAFT,
        ),
    )
