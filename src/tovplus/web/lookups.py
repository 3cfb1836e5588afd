"""Display-only lookups the pages need beside the services: names for ids, counts, recent runs.

Nothing here decides anything: callers authorize through the services first
(``occasion_overview``, ``get_connection``, ``admin_list``) and only then ask for
labels to show next to what those services returned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from tovplus.db.models import Connection, Occasion, SyncRun, User
from tovplus.db.sql import one_of
from tovplus.runtime import Runtime
from tovplus.services import occasions
from tovplus.services.auth import UserCaller
from tovplus.services.sync import ACTIVE_STATES

RECENT_RUNS = 5
OCCASION_CHOICES = 500


@dataclass(frozen=True, slots=True)
class OccasionSummary:
    id: str
    name: str
    starts_on: str
    connections: int
    attention: int


def planned_occasions(rt: Runtime, user: UserCaller) -> list[OccasionSummary]:
    """The planner's occasions with how many connections each has and how many need attention."""
    with rt.db.read() as session:
        rows = occasions.list_planned_occasions(session, user.user_id)
        ids = [o.id for o in rows]
        counts: dict[str, tuple[int, int]] = {}
        if ids:
            for occasion_id, health, count in session.execute(
                select(Connection.occasion_id, Connection.health, func.count())
                .where(one_of(Connection.occasion_id, ids), Connection.state != "revoked")
                .group_by(Connection.occasion_id, Connection.health)
            ):
                total, attention = counts.get(occasion_id, (0, 0))
                counts[occasion_id] = (
                    total + count,
                    attention + (count if health in ("degraded", "failing") else 0),
                )
        return [
            OccasionSummary(o.id, o.name, o.starts_on.isoformat(), *counts.get(o.id, (0, 0))) for o in rows
        ]


def occasion_names(rt: Runtime, ids: Iterable[str]) -> dict[str, str]:
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    with rt.db.read() as session:
        return dict(
            session.execute(select(Occasion.id, Occasion.name).where(one_of(Occasion.id, wanted))).all()
        )


def occasion_choices(rt: Runtime) -> list[tuple[str, str]]:
    """Occasions for the admin filter (the soonest first, at most :data:`OCCASION_CHOICES`)."""
    with rt.db.read() as session:
        return [
            (i, n)
            for i, n in session.execute(
                select(Occasion.id, Occasion.name)
                .order_by(Occasion.starts_on, Occasion.id)
                .limit(OCCASION_CHOICES)
            ).all()
        ]


def occasion_name(rt: Runtime, occasion_id: str) -> str:
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
            for user_id, email in session.execute(
                select(User.id, User.email).where(one_of(User.id, sorted(user_ids)))
            ).all():
                names[f"user:{user_id}"] = email
    return names


@dataclass(frozen=True, slots=True)
class RunView:
    id: str
    state: str
    trigger: str
    attempt: int
    error: str | None
    records_written: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


def recent_runs(rt: Runtime, connection_id: str) -> list[RunView]:
    """The connection's latest sync runs, newest first (call after ``get_connection`` authorized)."""
    with rt.db.read() as session:
        rows = session.scalars(
            select(SyncRun)
            .where(SyncRun.connection_id == connection_id)
            .order_by(SyncRun.id.desc())
            .limit(RECENT_RUNS)
        ).all()
        return [
            RunView(
                r.id,
                r.state,
                r.trigger,
                r.attempt,
                r.error,
                r.records_written,
                r.created_at,
                r.started_at,
                r.finished_at,
            )
            for r in rows
        ]


def record_summary(data: Any, limit: int = 4) -> list[tuple[str, str]]:
    """A few ``(key, value)`` pairs of a synced record's data to show in a table cell."""
    if not isinstance(data, dict):
        return [("value", str(data)[:120])]
    out = []
    for key, value in list(data.items())[:limit]:
        text = "—" if value is None else str(value)
        out.append((str(key).replace("_", " "), text if len(text) <= 120 else text[:119] + "…"))
    return out
