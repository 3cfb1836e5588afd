"""Occasions, their events and guests: the platform objects principals act on."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tovplus.db.models import Event, Guest, Occasion, OccasionPlanner
from tovplus.db.types import new_id
from tovplus.integrations.contract import ScopeType
from tovplus.integrations.payloads import format_timestamp
from tovplus.services.auth import MANAGE, Caller, IntegrationCaller, authorize, require_user
from tovplus.services.pagination import Page, page_of, paginate


def create_occasion(session: Session, caller: Caller, name: str, starts_on: date) -> Occasion:
    """Create an occasion; the creating user plans it."""
    user = require_user(caller)
    occasion = Occasion(id=new_id("occ"), name=name, starts_on=starts_on, created_by=user.user_id)
    session.add(occasion)
    session.flush()
    session.add(OccasionPlanner(occasion_id=occasion.id, user_id=user.user_id))
    return occasion


def add_planner(session: Session, occasion_id: str, user_id: str) -> None:
    if session.get(OccasionPlanner, (occasion_id, user_id)) is None:
        session.add(OccasionPlanner(occasion_id=occasion_id, user_id=user_id))


def get_occasion(session: Session, caller: Caller, occasion_id: str) -> Occasion:
    return authorize(session, caller, "occasion.read", occasion_id)


def list_planned_occasions(session: Session, user_id: str) -> list[Occasion]:
    return list(
        session.scalars(
            select(Occasion)
            .join(OccasionPlanner, OccasionPlanner.occasion_id == Occasion.id)
            .where(OccasionPlanner.user_id == user_id)
            .order_by(Occasion.starts_on, Occasion.id)
        )
    )


def create_event(
    session: Session, caller: Caller, occasion_id: str, name: str, starts_at: datetime | None
) -> Event:
    authorize(session, caller, MANAGE, occasion_id)
    event = Event(id=new_id("evt"), occasion_id=occasion_id, name=name, starts_at=starts_at)
    session.add(event)
    return event


def list_events(
    session: Session, caller: Caller, occasion_id: str, *, limit: int | None, cursor: str | None
) -> Page[Event]:
    authorize(session, caller, "events.read", occasion_id)
    query = select(Event).where(Event.occasion_id == occasion_id)
    if isinstance(caller, IntegrationCaller) and caller.scope.type is ScopeType.EVENT:
        query = query.where(Event.id == caller.scope.event_id)
    query, size = paginate(query, Event.id, limit=limit, cursor=cursor)
    return page_of(session.scalars(query).all(), size, lambda e: e.id)


def create_guest(session: Session, caller: Caller, occasion_id: str, name: str, email: str | None) -> Guest:
    authorize(session, caller, MANAGE, occasion_id)
    guest = Guest(id=new_id("gst"), occasion_id=occasion_id, name=name, email=email)
    session.add(guest)
    return guest


def list_guests(
    session: Session, caller: Caller, occasion_id: str, *, limit: int | None, cursor: str | None
) -> Page[Guest]:
    authorize(session, caller, "guests.read", occasion_id)
    query, size = paginate(
        select(Guest).where(Guest.occasion_id == occasion_id), Guest.id, limit=limit, cursor=cursor
    )
    return page_of(session.scalars(query).all(), size, lambda g: g.id)


def occasion_dict(occasion: Occasion) -> dict[str, Any]:
    return {
        "id": occasion.id,
        "name": occasion.name,
        "starts_on": occasion.starts_on.isoformat(),
        "created_at": format_timestamp(occasion.created_at),
    }


def event_dict(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "occasion_id": event.occasion_id,
        "name": event.name,
        "starts_at": format_timestamp(event.starts_at) if event.starts_at else None,
        "created_at": format_timestamp(event.created_at),
    }


def guest_dict(guest: Guest) -> dict[str, Any]:
    return {
        "id": guest.id,
        "occasion_id": guest.occasion_id,
        "name": guest.name,
        "email": guest.email,
        "created_at": format_timestamp(guest.created_at),
    }
