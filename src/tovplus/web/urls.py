"""Where the pages live: the links handlers redirect to and templates point at."""

from __future__ import annotations

from urllib.parse import quote


def integrations_url(occasion_id: str) -> str:
    """The planner's integrations page of an occasion."""
    return f"/occasions/{quote(occasion_id, safe='')}/integrations"


def connection_url(occasion_id: str, connection_id: str) -> str:
    """One connection's page."""
    return f"{integrations_url(occasion_id)}/connections/{quote(connection_id, safe='')}"
