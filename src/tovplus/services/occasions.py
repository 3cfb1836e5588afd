"""Occasions, their events and guests: the platform objects principals act on."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import Event, Guest, Occasion, OccasionPlanner
from tovplus.errors import FieldIssue, InvalidInput
from tovplus.integrations.contract import ScopeType
from tovplus.integrations.payloads import format_timestamp
from tovplus.runtime.pagination import Page, page_of, paginate
from tovplus.services.auth import (
    MANAGE,
    Caller,
    IntegrationCaller,
    authorize,
    normalise_email,
    require_user,
)


def _name(name: str) -> str:
    """A display name without surrounding blanks; only blanks is no name at all."""
    cleaned = name.strip()
    if not cleaned:
        raise InvalidInput(
            "A name is required.", fields=[FieldIssue("name", "required", "Enter a name, not only spaces.")]
        )
    return cleaned


def _guest_email(email: str | None) -> str | None:
    """A guest's email as given (trimmed), checked to look like an address; blank means none."""
    if email is None or not email.strip():
        return None
    try:
        normalise_email(email)
    except InvalidInput:
        raise InvalidInput(
            "Enter a valid email address for the guest.",
            fields=[FieldIssue("email", "invalid", "Not an email address.")],
        ) from None
    return email.strip()


def create_occasion(session: Session, caller: Caller, name: str, starts_on: date) -> Occasion:
    """Create an occasion; the creating user plans it."""
    user = require_user(caller)
    occasion = Occasion(id=new_id("occ"), name=_name(name), starts_on=starts_on, created_by=user.user_id)
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
    if starts_at is not None and starts_at.tzinfo is None:
        raise InvalidInput(
            "starts_at needs a UTC offset.",
            fields=[
                FieldIssue("starts_at", "invalid", "Give an RFC 3339 time such as 2027-06-12T18:00:00Z.")
            ],
        )
    event = Event(id=new_id("evt"), occasion_id=occasion_id, name=_name(name), starts_at=starts_at)
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
    guest = Guest(id=new_id("gst"), occasion_id=occasion_id, name=_name(name), email=_guest_email(email))
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
