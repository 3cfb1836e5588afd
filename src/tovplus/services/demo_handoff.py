"""Issue 18's part of ``make run``: the demo occasion in Kyiv time and labelled connections.

Called once from :func:`tovplus.services.demo.seed_demo`; running it again changes nothing.
"""

from __future__ import annotations

from sqlalchemy import select

from tovplus.db.models import Connection
from tovplus.db.states import ConnectionState
from tovplus.runtime import Runtime
from tovplus.services import occasions
from tovplus.services.auth import UserCaller
from tovplus.services.connections import ConnectionPatch, update_connection

DEMO_TIME_ZONE = "Europe/Kyiv"
#: The demo connections' labels, by adapter.
DEMO_LABELS = {
    "printing_partner": "Invitations — demo print shop",
    "venue_ops": "Kyiv hall",
    "guest_messaging": "Invitations & RSVPs — demo messaging",
}


def label_demo(rt: Runtime, caller: UserCaller, occasion_id: str) -> None:
    """Show the demo occasion's times in Kyiv and give its unlabelled connections a label."""
    with rt.db.write() as session:
        occasions.set_time_zone(session, caller, occasion_id, DEMO_TIME_ZONE)
        rows = session.execute(
            select(Connection.id, Connection.integration_key).where(
                Connection.occasion_id == occasion_id,
                Connection.label.is_(None),
                Connection.state != ConnectionState.REVOKED,
            )
        ).all()
    for connection_id, integration_key in rows:
        label = DEMO_LABELS.get(integration_key)
        if label:
            update_connection(rt, caller, occasion_id, connection_id, ConnectionPatch(label=label))
