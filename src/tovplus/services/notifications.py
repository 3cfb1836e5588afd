"""Telling people that a connection needs attention: a connection that turns ``failing`` and one
that recovers make a notice for the planners of its occasion and an entry in the admin feed.

Delivery is a :class:`Notifier`; :class:`InAppNotifier` (the "Needs attention" list at the top of
the planner's pages, kept in ``notices``) is the one implementation. Email is an extension point:
a class with the same ``notify`` method (queue the mail from the notice, after commit) added to
:data:`NOTIFIERS` — nothing else changes. A failing notice is cleared when the connection
recovers or when a planner dismisses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import Notice, OccasionPlanner
from tovplus.db.types import utcnow
from tovplus.errors import NotFound
from tovplus.integrations.payloads import format_timestamp
from tovplus.runtime import Runtime
from tovplus.runtime.views import View
from tovplus.services import activity
from tovplus.services.auth import MANAGE, Caller, authorize, is_id, require_user

FAILING = "failing"
KIND_FAILING = "connection.failing"
KIND_RECOVERED = "connection.recovered"


@dataclass(frozen=True, slots=True)
class HealthChange:
    """A connection's health moved from ``previous`` to ``health``."""

    occasion_id: str
    connection_id: str
    integration_key: str
    previous: str
    health: str
    reasons: tuple[str, ...] = ()


class Notifier(Protocol):
    """Something that tells people about a notice (in the transaction that caused it)."""

    def notify(self, session: Session, notice: Notice) -> None: ...


class InAppNotifier:
    """Keeps the notice for the occasion's pages ("Needs attention")."""

    def notify(self, session: Session, notice: Notice) -> None:
        session.add(notice)


#: Every way a notice goes out; add an email notifier here.
NOTIFIERS: tuple[Notifier, ...] = (InAppNotifier(),)


class NoticeModel(View):
    """A notice as the pages show it."""

    id: str
    occasion_id: str
    connection_id: str | None
    kind: str
    summary: str
    created_at: str
    #: A recovery notice is good news: it says so and waits only to be dismissed.
    resolved: bool


def _view(notice: Notice) -> NoticeModel:
    return NoticeModel(
        id=notice.id,
        occasion_id=notice.occasion_id,
        connection_id=notice.connection_id,
        kind=notice.kind,
        summary=notice.summary,
        created_at=format_timestamp(notice.created_at),
        resolved=notice.kind == KIND_RECOVERED,
    )


def health_changed(session: Session, change: HealthChange, *, name: str | None = None) -> None:
    """Notice and admin-feed entry when ``change`` turns failing or recovers from failing; else nothing.
    Runs in the caller's transaction."""
    turned_failing = change.health == FAILING and change.previous != FAILING
    recovered = change.previous == FAILING and change.health != FAILING
    if not (turned_failing or recovered):
        return
    label = name or change.integration_key
    now = utcnow()
    _clear(session, change.connection_id, "system")
    if turned_failing:
        why = change.reasons[0] if change.reasons else "its last sync failed"
        kind, summary = KIND_FAILING, f"{label} connection needs attention: {why}"
    else:
        kind, summary = KIND_RECOVERED, f"{label} connection has recovered (health {change.health})"
    notice = Notice(
        id=new_id("ntc"),
        occasion_id=change.occasion_id,
        connection_id=change.connection_id,
        kind=kind,
        summary=summary[:500],
        created_at=now,
    )
    for notifier in NOTIFIERS:
        notifier.notify(session, notice)
    activity.record(
        session,
        kind=f"notice.{kind.split('.', 1)[1]}",
        actor="system",
        summary=summary,
        occasion_id=change.occasion_id,
        connection_id=change.connection_id,
        integration_key=change.integration_key,
        details={
            "health": change.health,
            "previous_health": change.previous,
            "reasons": list(change.reasons),
        },
    )


def _clear(session: Session, connection_id: str, by: str) -> None:
    session.execute(
        update(Notice)
        .where(Notice.connection_id == connection_id, Notice.cleared_at.is_(None))
        .values(cleared_at=utcnow(), cleared_by=by)
        .execution_options(synchronize_session=False)
    )


def open_notices(rt: Runtime, caller: Caller, *, occasion_id: str | None = None) -> list[NoticeModel]:
    """The notices not yet cleared, newest first: of one occasion, or of every occasion the
    calling user plans."""
    with rt.db.read() as session:
        query = select(Notice).where(Notice.cleared_at.is_(None))
        if occasion_id is not None:
            authorize(session, caller, MANAGE, occasion_id)
            query = query.where(Notice.occasion_id == occasion_id)
        else:
            user = require_user(caller)
            planned = select(OccasionPlanner.occasion_id).where(OccasionPlanner.user_id == user.user_id)
            query = query.where(Notice.occasion_id.in_(planned))
        return [_view(n) for n in session.scalars(query.order_by(Notice.id.desc()).limit(50))]


def dismiss(rt: Runtime, caller: Caller, occasion_id: str, notice_id: str) -> None:
    """Clear one notice of the occasion (for every planner of it)."""
    with rt.db.write() as session:
        authorize(session, caller, MANAGE, occasion_id)
        notice = session.get(Notice, notice_id) if is_id(notice_id) else None
        if notice is None or notice.occasion_id != occasion_id:
            raise NotFound("No such notice.")
        if notice.cleared_at is None:
            notice.cleared_at, notice.cleared_by = utcnow(), caller.subject_id
