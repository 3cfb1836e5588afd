"""A simulator of the printing partner's API (``tovplus partner-sim``), for development and tests.

``create_app()`` builds it; ``SimState`` holds its accounts, orders and fault switches;
``MessagingState`` the messaging partner's clients, grants, RSVPs and messages (``/messaging``);
``BackgroundServer`` runs it (or any ASGI app) on a loopback port inside the process.
"""

from __future__ import annotations

from tovplus.partner_sim.app import create_app, generated_key
from tovplus.partner_sim.messaging_state import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, MessagingState
from tovplus.partner_sim.server import BackgroundServer
from tovplus.partner_sim.state import DEMO_ACCOUNT_ID, DEMO_API_KEY, ORDER_STATUSES, Account, SimState

__all__ = [
    "DEMO_ACCOUNT_ID",
    "DEMO_API_KEY",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "ORDER_STATUSES",
    "Account",
    "BackgroundServer",
    "MessagingState",
    "SimState",
    "create_app",
    "generated_key",
]
