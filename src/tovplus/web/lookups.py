"""Display-only lookups the pages need beside the services: names for ids, counts, recent runs.

Nothing here decides anything: callers authorize through the services first
(``occasion_overview``, ``get_connection``, ``admin_list``) and only then ask for
labels to show next to what those services returned. Names come from the occasion and
auth domains; the connection counts and the recent runs are queried here (they belong to
the connections and sync domains, which have no function for them yet).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select

from tovplus.db.models import Connection
from tovplus.db.sql import one_of
from tovplus.db.states import ConnectionState
from tovplus.integrations.contract import Health
from tovplus.runtime import Runtime
from tovplus.services import occasions
from tovplus.services.auth import UserCaller, user_emails

RECENT_RUNS = 5
_ATTENTION = (Health.DEGRADED, Health.FAILING)


@dataclass(frozen=True, slots=True)
class OccasionSummary:
    """One of the planner's occasions, with how many connections it has and need attention."""

    id: str
    name: str
    starts_on: str
    connections: int
    attention: int


def planned_occasions(rt: Runtime, user: UserCaller) -> list[OccasionSummary]:
    """The planner's occasions with how many connections each has and how many need attention."""
    with rt.db.read() as session:
        rows = [
            occasions.OccasionModel.of(o) for o in occasions.list_planned_occasions(session, user.user_id)
        ]
        ids = [o.id for o in rows]
        counts: dict[str, tuple[int, int]] = {}
        if ids:
            for occasion_id, health, count in session.execute(
                select(Connection.occasion_id, Connection.health, func.count())
                .where(
                    one_of(Connection.occasion_id.expression, ids),
                    Connection.state != ConnectionState.REVOKED,
                )
                .group_by(Connection.occasion_id, Connection.health)
            ):
                total, attention = counts.get(occasion_id, (0, 0))
                counts[occasion_id] = (total + count, attention + (count if health in _ATTENTION else 0))
        return [OccasionSummary(o.id, o.name, o.starts_on, *counts.get(o.id, (0, 0))) for o in rows]


def occasion_names(rt: Runtime, ids: Iterable[str]) -> dict[str, str]:
    """``{occasion_id: name}`` for the known ones among ``ids``."""
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    with rt.db.read() as session:
        return occasions.occasion_names(session, wanted)


def occasion_choices(rt: Runtime) -> list[tuple[str, str]]:
    """Occasions for the admin filter (the soonest first, at most ``occasions.OCCASION_CHOICES``)."""
    with rt.db.read() as session:
        return occasions.occasion_choices(session)


def occasion_time_zone(rt: Runtime, occasion_id: str) -> str:
    """The zone the occasion's pages show times in (``UTC`` when it has none)."""
    with rt.db.read() as session:
        return occasions.time_zone_of(session, occasion_id)


def occasion_name(rt: Runtime, occasion_id: str) -> str:
    """The occasion's name (its id when it has none to show)."""
    return occasion_names(rt, [occasion_id]).get(occasion_id, occasion_id)


def actor_names(rt: Runtime, actors: Iterable[str | None]) -> dict[str, str]:
    """``user:<id>`` → the user's email; integration principals and the system get plain names."""
    names: dict[str, str] = {}
    user_ids = set()
    for actor in actors:
        if not actor:
            continue
        if actor.startswith("user:"):
            user_ids.add(actor[5:])
        elif actor.startswith("integration:"):
            names[actor] = "The integration"
        elif actor == "system":
            names[actor] = "TOV Plus"
    if user_ids:
        with rt.db.read() as session:
            for user_id, email in user_emails(session, user_ids).items():
                names[f"user:{user_id}"] = email
    return names
