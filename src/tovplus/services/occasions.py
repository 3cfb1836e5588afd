"""Occasions, their events and guests: the platform objects principals act on.

Each has one typed view (:class:`OccasionModel`, :class:`EventModel`, :class:`GuestModel`), built
here from its row and used both as the API's response model and by the pages.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from functools import lru_cache
from typing import Self
from zoneinfo import available_timezones

from sqlalchemy import select
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import Event, Guest, Occasion, OccasionPlanner
from tovplus.db.sql import one_of
from tovplus.errors import FieldIssue, InvalidInput, NotFound
from tovplus.integrations.contract import ScopeType
from tovplus.integrations.payloads import format_timestamp
from tovplus.runtime.pagination import Page, page_of, paginate
from tovplus.runtime.views import View
from tovplus.services import platform_events
from tovplus.services.auth import (
    MANAGE,
    Caller,
    IntegrationCaller,
    authorize,
    normalise_email,
    require_user,
)

#: An occasion's zone when its creator's browser gave none.
DEFAULT_TIME_ZONE = "UTC"
#: At most this many occasions are offered as choices (e.g. the admin page's filter).
OCCASION_CHOICES = 500


# --- views ------------------------------------------------------------------------------------


class OccasionModel(View):
    """An occasion as callers see it (dates and times as RFC 3339 text)."""

    id: str
    name: str
    starts_on: str
    #: The IANA zone pages show the occasion's times in; the API's times stay UTC.
    time_zone: str = DEFAULT_TIME_ZONE
    created_at: str

    @classmethod
    def of(cls, occasion: Occasion) -> Self:
        return cls(
            id=occasion.id,
            name=occasion.name,
            starts_on=occasion.starts_on.isoformat(),
            time_zone=occasion.time_zone or DEFAULT_TIME_ZONE,
            created_at=format_timestamp(occasion.created_at),
        )


class EventModel(View):
    """One event of an occasion (a ceremony, a dinner)."""

    id: str
    occasion_id: str
    name: str
    starts_at: str | None
    created_at: str

    @classmethod
    def of(cls, event: Event) -> Self:
        return cls(
            id=event.id,
            occasion_id=event.occasion_id,
            name=event.name,
            starts_at=format_timestamp(event.starts_at) if event.starts_at else None,
            created_at=format_timestamp(event.created_at),
        )


class GuestModel(View):
    """One guest of an occasion."""

    id: str
    occasion_id: str
    name: str
    email: str | None
    created_at: str

    @classmethod
    def of(cls, guest: Guest) -> Self:
        return cls(
            id=guest.id,
            occasion_id=guest.occasion_id,
            name=guest.name,
            email=guest.email,
            created_at=format_timestamp(guest.created_at),
        )


# --- rules ------------------------------------------------------------------------------------


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


def check_time_zone(value: str | None) -> str:
    """An IANA zone name as stored (``UTC`` for none); 422 ``time_zone`` for an unknown one."""
    if value is None or not value.strip():
        return DEFAULT_TIME_ZONE
    zone = value.strip()
    if zone not in time_zones():
        raise InvalidInput(
            "Unknown time zone.",
            fields=[FieldIssue("time_zone", "invalid", "Use an IANA time zone such as Europe/Kyiv or UTC.")],
        )
    return zone


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    """Every IANA zone name this machine knows, plus ``UTC``."""
    return frozenset(available_timezones()) | {DEFAULT_TIME_ZONE}


def create_occasion(
    session: Session, caller: Caller, name: str, starts_on: date, time_zone: str | None = None
) -> Occasion:
    """Create an occasion; the creating user plans it."""
    user = require_user(caller)
    occasion = Occasion(
        id=new_id("occ"),
        name=_name(name),
        starts_on=starts_on,
        time_zone=check_time_zone(time_zone),
        created_by=user.user_id,
    )
    session.add(occasion)
    session.flush()
    session.add(OccasionPlanner(occasion_id=occasion.id, user_id=user.user_id))
    return occasion


def set_time_zone(session: Session, caller: Caller, occasion_id: str, time_zone: str) -> None:
    """Change the zone the occasion's pages show times in (``occasion.manage``)."""
    occasion = authorize(session, caller, MANAGE, occasion_id)
    occasion.time_zone = check_time_zone(time_zone)


def add_planner(session: Session, occasion_id: str, user_id: str) -> None:
    """Make the user one of the occasion's planners (nothing happens if they already are)."""
    if session.get(OccasionPlanner, (occasion_id, user_id)) is None:
        session.add(OccasionPlanner(occasion_id=occasion_id, user_id=user_id))


def get_occasion(session: Session, caller: Caller, occasion_id: str) -> Occasion:
    """The occasion, if the caller may read it (``occasion.read``)."""
    return authorize(session, caller, "occasion.read", occasion_id)


def list_planned_occasions(session: Session, user_id: str) -> list[Occasion]:
    """The occasions the user plans, the soonest first."""
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
    """Add an event to the occasion (``occasion.manage``); ``starts_at`` needs a UTC offset."""
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
    """A page of the occasion's events (``events.read``); an event-scoped key sees its event only."""
    authorize(session, caller, "events.read", occasion_id)
    query = select(Event).where(Event.occasion_id == occasion_id)
    if isinstance(caller, IntegrationCaller) and caller.scope.type is ScopeType.EVENT:
        query = query.where(Event.id == caller.scope.event_id)
    query, size = paginate(query, Event.id, limit=limit, cursor=cursor)
    return page_of(session.scalars(query).all(), size, lambda e: e.id)


def create_guest(session: Session, caller: Caller, occasion_id: str, name: str, email: str | None) -> Guest:
    """Add a guest to the occasion (``occasion.manage``)."""
    authorize(session, caller, MANAGE, occasion_id)
    guest = Guest(id=new_id("gst"), occasion_id=occasion_id, name=_name(name), email=_guest_email(email))
    session.add(guest)
    platform_events.emit(session, occasion_id=occasion_id, event_type="guest.created", subject_id=guest.id)
    return guest


_UNCHANGED = object()


def update_guest(
    session: Session,
    caller: Caller,
    occasion_id: str,
    guest_id: str,
    *,
    name: str | None = None,
    email: str | object | None = _UNCHANGED,
) -> Guest:
    """Change a guest's name and/or email (``occasion.manage``); emits ``guest.updated`` when changed."""
    authorize(session, caller, MANAGE, occasion_id)
    guest = session.get(Guest, guest_id) if len(guest_id) <= 40 else None
    if guest is None or guest.occasion_id != occasion_id:
        raise NotFound("No such guest.")
    before = (guest.name, guest.email)
    if name is not None:
        guest.name = _name(name)
    if email is not _UNCHANGED:
        guest.email = _guest_email(email if isinstance(email, str) else None)
    if (guest.name, guest.email) != before:
        platform_events.emit(
            session, occasion_id=occasion_id, event_type="guest.updated", subject_id=guest.id
        )
    return guest


def list_guests(
    session: Session, caller: Caller, occasion_id: str, *, limit: int | None, cursor: str | None
) -> Page[Guest]:
    """A page of the occasion's guests (``guests.read``; never for an event-scoped key: guests are the
    occasion's, not any one event's, so :func:`authorize` refuses it with 403)."""
    authorize(session, caller, "guests.read", occasion_id)
    query, size = paginate(
        select(Guest).where(Guest.occasion_id == occasion_id), Guest.id, limit=limit, cursor=cursor
    )
    return page_of(session.scalars(query).all(), size, lambda g: g.id)


def occasion_row(session: Session, occasion_id: str) -> Occasion:
    """The occasion itself (for the framework's action context; no caller)."""
    occasion = session.get(Occasion, occasion_id)
    if occasion is None:
        raise NotFound("No such occasion.")
    return occasion


def all_guests(session: Session, occasion_id: str) -> list[Guest]:
    """Every guest of the occasion, oldest first (for the framework's action context; no caller)."""
    return list(session.scalars(select(Guest).where(Guest.occasion_id == occasion_id).order_by(Guest.id)))


def all_events(session: Session, occasion_id: str) -> list[Event]:
    """Every event of the occasion, oldest first (for the framework's action context; no caller)."""
    return list(session.scalars(select(Event).where(Event.occasion_id == occasion_id).order_by(Event.id)))


# --- names for the pages (call after the caller was authorized for what is shown) --------------


def occasion_names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    """``{occasion_id: name}`` for the known ones among ``ids`` (blank ids are ignored)."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    rows = session.execute(select(Occasion.id, Occasion.name).where(one_of(Occasion.id.expression, wanted)))
    return dict(rows.all())


def time_zone_of(session: Session, occasion_id: str) -> str:
    """The occasion's time zone (``UTC`` when unknown); for display next to what was authorized."""
    zone = session.scalar(select(Occasion.time_zone).where(Occasion.id == occasion_id))
    return zone or DEFAULT_TIME_ZONE


def occasion_choices(session: Session, limit: int = OCCASION_CHOICES) -> list[tuple[str, str]]:
    """``(id, name)`` of every occasion, the soonest first, at most ``limit`` of them."""
    rows = session.execute(
        select(Occasion.id, Occasion.name).order_by(Occasion.starts_on, Occasion.id).limit(limit)
    )
    return [(i, n) for i, n in rows.all()]


# --- plain dicts, for callers not yet moved to the views ----------------------------------------


def occasion_dict(occasion: Occasion) -> dict[str, object]:
    """:class:`OccasionModel` as a dict."""
    return OccasionModel.of(occasion).model_dump()


def event_dict(event: Event) -> dict[str, object]:
    """:class:`EventModel` as a dict."""
    return EventModel.of(event).model_dump()


def guest_dict(guest: Guest) -> dict[str, object]:
    """:class:`GuestModel` as a dict."""
    return GuestModel.of(guest).model_dump()
