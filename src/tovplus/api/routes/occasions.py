"""Occasions, events and guests: the platform routes principals act on."""

from __future__ import annotations

from fastapi import APIRouter, Security

from tovplus.api.deps import CallerDep, RuntimeDep
from tovplus.api.schemas import (
    BEARER,
    CursorQuery,
    EventIn,
    EventOut,
    EventsOut,
    GuestIn,
    GuestOut,
    GuestPatchIn,
    GuestsOut,
    LimitQuery,
    OccasionIn,
    OccasionOut,
)
from tovplus.services import occasions
from tovplus.services.occasions import EventModel, GuestModel, OccasionModel

router = APIRouter(prefix="/v1/occasions", tags=["occasions"], dependencies=[Security(BEARER)])
Limit = LimitQuery
Cursor = CursorQuery


@router.post("", status_code=201, response_model=OccasionOut)
def create_occasion(body: OccasionIn, rt: RuntimeDep, caller: CallerDep) -> OccasionOut:
    """Create an occasion; the creating planner plans it."""
    with rt.db.write() as session:
        occasion = occasions.create_occasion(session, caller, body.name, body.starts_on, body.time_zone)
        return OccasionOut(occasion=OccasionModel.of(occasion))


@router.get("/{occasion_id}", response_model=OccasionOut)
def get_occasion(occasion_id: str, rt: RuntimeDep, caller: CallerDep) -> OccasionOut:
    """Read an occasion (action ``occasion.read``)."""
    with rt.db.read() as session:
        return OccasionOut(occasion=OccasionModel.of(occasions.get_occasion(session, caller, occasion_id)))


@router.get("/{occasion_id}/events", response_model=EventsOut)
def list_events(
    occasion_id: str, rt: RuntimeDep, caller: CallerDep, limit: Limit = None, cursor: Cursor = None
) -> EventsOut:
    """The occasion's events (action ``events.read``)."""
    with rt.db.read() as session:
        page = occasions.list_events(session, caller, occasion_id, limit=limit, cursor=cursor)
        return EventsOut(events=[EventModel.of(e) for e in page.items], next_cursor=page.next_cursor)


@router.post("/{occasion_id}/events", status_code=201, response_model=EventOut)
def create_event(occasion_id: str, body: EventIn, rt: RuntimeDep, caller: CallerDep) -> EventOut:
    with rt.db.write() as session:
        event = occasions.create_event(session, caller, occasion_id, body.name, body.starts_at)
        session.flush()
        return EventOut(event=EventModel.of(event))


@router.get("/{occasion_id}/guests", response_model=GuestsOut)
def list_guests(
    occasion_id: str, rt: RuntimeDep, caller: CallerDep, limit: Limit = None, cursor: Cursor = None
) -> GuestsOut:
    """The occasion's guests (action ``guests.read``)."""
    with rt.db.read() as session:
        page = occasions.list_guests(session, caller, occasion_id, limit=limit, cursor=cursor)
        return GuestsOut(guests=[GuestModel.of(g) for g in page.items], next_cursor=page.next_cursor)


@router.post("/{occasion_id}/guests", status_code=201, response_model=GuestOut)
def create_guest(occasion_id: str, body: GuestIn, rt: RuntimeDep, caller: CallerDep) -> GuestOut:
    with rt.db.write() as session:
        guest = occasions.create_guest(session, caller, occasion_id, body.name, body.email)
        session.flush()
        return GuestOut(guest=GuestModel.of(guest))


@router.patch("/{occasion_id}/guests/{guest_id}", response_model=GuestOut)
def update_guest(
    occasion_id: str, guest_id: str, body: GuestPatchIn, rt: RuntimeDep, caller: CallerDep
) -> GuestOut:
    """Change a guest's name or email (``email: null`` removes it); emits ``guest.updated``."""
    with rt.db.write() as session:
        if "email" in body.model_fields_set:
            guest = occasions.update_guest(
                session, caller, occasion_id, guest_id, name=body.name, email=body.email
            )
        else:
            guest = occasions.update_guest(session, caller, occasion_id, guest_id, name=body.name)
        session.flush()
        return GuestOut(guest=GuestModel.of(guest))
