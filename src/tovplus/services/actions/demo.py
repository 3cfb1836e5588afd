"""What ``make run`` says about actions: how to see a guest change reach the printer simulator."""

from __future__ import annotations

#: Where ``make run`` serves the printing partner simulator.
SIMULATOR_URL = "http://127.0.0.1:8100"


def demo_hints(base_url: str, occasion_id: str, planner_token: str) -> list[str]:
    """Lines for the demo's sign-in instructions: add a guest, then see the list the printer got."""
    return [
        "Actions: add a guest and the printer simulator receives the guest list within seconds:",
        f"  curl -X POST -H 'Authorization: Bearer {planner_token}' -H 'Content-Type: application/json' "
        f'-d \'{{"name": "New Guest"}}\' {base_url}/v1/occasions/{occasion_id}/guests',
        f"  curl {SIMULATOR_URL}/_control/guest-lists   (what the printer received)",
    ]
