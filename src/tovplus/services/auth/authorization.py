"""May this caller do action A on occasion O (event E)? The one function that answers."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tovplus.db.ids import is_id
from tovplus.db.models import Event, Occasion, OccasionPlanner
from tovplus.errors import Forbidden, NotFound
from tovplus.integrations.contract import ScopeType
from tovplus.services.auth.callers import Caller, IntegrationCaller, UserCaller

#: Actions a user may take on an occasion; integration principals hold only grantable ones.
MANAGE = "occasion.manage"
#: Actions on what belongs to the whole occasion rather than to one of its events: guests are
#: the occasion's (a guest row has no event). An event-scoped principal is never granted them
#: and is refused them (403) even if an older grant row says otherwise.
OCCASION_WIDE_ACTIONS = frozenset({"guests.read"})


def scope_allows(scope_type: ScopeType, action: str) -> bool:
    """False for an action a principal of this scope type may not hold (see :data:`OCCASION_WIDE_ACTIONS`)."""
    return not (scope_type is ScopeType.EVENT and action in OCCASION_WIDE_ACTIONS)


def plans(session: Session, user_id: str, occasion_id: str) -> bool:
    """True when the user is one of the occasion's planners."""
    return session.get(OccasionPlanner, (occasion_id, user_id)) is not None


def authorize(
    session: Session, caller: Caller, action: str, occasion_id: str, *, event_id: str | None = None
) -> Occasion:
    """Load the occasion and check that ``caller`` may do ``action`` on it (and on ``event_id``).

    Planners get 404 for occasions they do not plan (they must not learn they exist).
    Integration principals get 403 for anything outside their scope or grants, checked
    before the occasion is looked up, so a key cannot probe which ids exist elsewhere.
    """
    if isinstance(caller, IntegrationCaller):
        scope = caller.scope
        if scope.type is not ScopeType.PLATFORM and scope.occasion_id != occasion_id:
            raise Forbidden("This integration key is not scoped to this occasion.")
        if scope.type is ScopeType.EVENT and event_id is not None and event_id != scope.event_id:
            raise Forbidden("This integration key is not scoped to this event.")
        if action == MANAGE:
            raise Forbidden("Integration keys cannot manage integrations.")
        if not scope_allows(scope.type, action):
            raise Forbidden(
                f"This integration key is scoped to one event; {action} covers the whole occasion."
            )
        if action not in caller.action_keys:
            raise Forbidden(f"This integration key is not granted {action}.")
    occasion = session.get(Occasion, occasion_id) if is_id(occasion_id) else None
    if occasion is None:
        raise NotFound("No such occasion.")
    if (
        isinstance(caller, UserCaller)
        and not caller.is_admin
        and not plans(session, caller.user_id, occasion_id)
    ):
        raise NotFound("No such occasion.")
    return occasion


def event_of_occasion(session: Session, occasion_id: str, event_id: str) -> Event | None:
    """The event ``event_id`` if it belongs to the occasion, else ``None``."""
    event = session.get(Event, event_id) if is_id(event_id) else None
    return event if event is not None and event.occasion_id == occasion_id else None
