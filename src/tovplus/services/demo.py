"""Demo data for ``make run``: two users, an occasion with events and guests, and its connections
(printing, venue, an unreachable printer, and guest messaging authorized at the simulator)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from tovplus.db.models import Occasion, OccasionPlanner, User
from tovplus.db.states import ConnectionState
from tovplus.runtime import Runtime
from tovplus.services import actions, demo_handoff, demo_messaging, occasions
from tovplus.services.auth import UserCaller, create_user, issue_user_token, set_password
from tovplus.services.connections import ConnectionCreate, create_connection
from tovplus.services.demo_outage import seed_outage_demo
from tovplus.services.webhooks import seed_webhooks_demo

PLANNER_EMAIL = "planner@demo.tovplus.test"
ADMIN_EMAIL = "admin@demo.tovplus.test"
OCCASION_NAME = "Olena & Taras — wedding"
PARTNER_URL = "http://127.0.0.1:8100"


#: The demo users' password for the pages (demo data only; never for a real deployment).
DEMO_PASSWORD = "tovplus-demo-2027"  # noqa: S105


def _user(rt: Runtime, email: str, role: str) -> tuple[User, str]:
    with rt.db.write() as session:
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            user = create_user(session, email, role)
        if user.password_hash is None:
            set_password(session, user, DEMO_PASSWORD)
        return user, issue_user_token(session, user)


def seed_demo(rt: Runtime) -> str:
    """Create the demo data once (later runs reuse it) and return sign-in instructions."""
    planner, planner_token = _user(rt, PLANNER_EMAIL, "planner")
    _admin, admin_token = _user(rt, ADMIN_EMAIL, "admin")
    caller = UserCaller(planner.id, planner.email, planner.role)
    with rt.db.write() as session:
        occasion = session.scalar(
            select(Occasion)
            .join(OccasionPlanner, OccasionPlanner.occasion_id == Occasion.id)
            .where(OccasionPlanner.user_id == planner.id, Occasion.name == OCCASION_NAME)
        )
        created = occasion is None
        if occasion is None:
            occasion = occasions.create_occasion(session, caller, OCCASION_NAME, date(2027, 6, 12))
            session.flush()
            for name, hour in (("Ceremony", 14), ("Dinner", 18), ("Party", 21)):
                occasions.create_event(
                    session, caller, occasion.id, name, datetime(2027, 6, 12, hour, tzinfo=UTC)
                )
            for name in (
                "Iryna Koval",
                "Maksym Bondar",
                "Sofia Shevchenko",
                "Andrii Melnyk",
                "Daria Tkachenko",
            ):
                occasions.create_guest(session, caller, occasion.id, name, None)
        occasion_id = occasion.id
    # every run (the simulator forgets its grants), and before the webhooks demo's endpoint exists
    messaging = demo_messaging.seed_messaging_demo(rt, caller, occasion_id)
    if created:
        create_connection(
            rt,
            caller,
            occasion_id,
            ConnectionCreate(
                "printing_partner",
                config={"account_id": "demo-account", "api_base_url": PARTNER_URL},
                secrets={"api_key": "demo-printer-api-key-0001"},
                state=ConnectionState.ENABLED if rt.settings.allow_private_urls else ConnectionState.DRAFT,
            ),
        )
        create_connection(
            rt, caller, occasion_id, ConnectionCreate("venue_ops", config={"timezone": "Europe/Kyiv"})
        )
        seed_outage_demo(rt, caller, occasion_id)
        seed_webhooks_demo(rt, caller, occasion_id, f"{PARTNER_URL}/_webhooks")
    demo_handoff.label_demo(rt, caller, occasion_id)
    base = rt.settings.public_base_url
    return "\n".join(
        [
            f"Demo occasion: {OCCASION_NAME} ({occasion_id})",
            f"Planner {PLANNER_EMAIL}: bearer token {planner_token}",
            f"Admin   {ADMIN_EMAIL}: bearer token {admin_token}",
            f"Try: curl -H 'Authorization: Bearer {planner_token}' "
            f"{base}/v1/occasions/{occasion_id}/integrations",
            f"Pages: {base}/sign-in as {PLANNER_EMAIL} or {ADMIN_EMAIL}, password {DEMO_PASSWORD}",
            messaging,
            *actions.demo_hints(base, occasion_id, planner_token),
        ]
    )
