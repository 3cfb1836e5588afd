"""Actions: what an adapter pushes to its partner on the platform's initiative.

An adapter declares its actions as :class:`ActionSpec` (key, label, description, typed
input fields checked like config fields, and the action keys the action needs) and
implements ``Adapter.perform(action_key, input, ctx) -> ActionResult``. It raises the same
typed errors as ``sync``: ``CredentialsRejected`` (final, health ``failing``),
``PartnerUnavailable`` (retried with the same idempotency key), ``DriftDetected`` (final).

The :class:`ActionContext` carries the connection's config and secrets, the safe HTTP client,
the run's id (send it as ``Idempotency-Key``) and :class:`PlatformData`: the occasion data the
connection's action keys allow it to read, and nothing more.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from tovplus.errors import FieldIssue, Forbidden, InvalidInput
from tovplus.integrations.fields import Field, check_fields

if TYPE_CHECKING:
    import httpx

#: Platform events an adapter may subscribe its actions to: one declaration each (type: what it
#: means). The platform emits them into its outbox (``services/platform_events.py``).
PLATFORM_EVENTS: Mapping[str, str] = {
    "guest.created": "A guest was added to the occasion.",
    "guest.updated": "A guest of the occasion was changed.",
}
PLATFORM_EVENT_TYPES: tuple[str, ...] = tuple(PLATFORM_EVENTS)


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action an adapter can perform.

    ``requires`` lists the action keys (e.g. ``guests.read``) the connection must hold for the
    action to be run or subscribed; ``subscribes`` lists the platform events that queue it by
    themselves (each must be in :data:`PLATFORM_EVENT_TYPES`).
    """

    key: str
    label: str
    description: str
    input_fields: tuple[Field, ...] = ()
    requires: tuple[str, ...] = ()
    subscribes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", self.key):
            raise ValueError(f"action key {self.key!r} must be snake_case")
        unknown = set(self.subscribes) - set(PLATFORM_EVENT_TYPES)
        if unknown:
            raise ValueError(f"action {self.key!r} subscribes to unknown platform events {sorted(unknown)}")

    def describe(self) -> dict[str, Any]:
        """The catalog's description of the action."""
        return {
            "key": self.key,
            "label": self.label,
            "description": self.description,
            "input_fields": [f.describe() for f in self.input_fields],
            "requires": list(self.requires),
            "subscribes": list(self.subscribes),
        }

    def check_input(self, values: Mapping[str, Any], *, allow_private_urls: bool = False) -> dict[str, Any]:
        """The input as declared, or :class:`InvalidInput` with ``input.<key>`` fields.

        Keys no field declares are refused (an action's input is not stored settings).
        """
        errors, _ = check_fields(self.input_fields, values, "input", allow_private_urls=allow_private_urls)
        known = {f.key for f in self.input_fields}
        errors.extend(
            FieldIssue(f"input.{k}", "unknown_field", f"{k!r} is not an input of this action.")
            for k in sorted(set(values) - known)
        )
        if errors:
            raise InvalidInput(f"The input of {self.label} is not valid.", fields=errors)
        return {k: v for k, v in values.items() if k in known}


@dataclass(frozen=True, slots=True)
class GuestData:
    """A guest as an action may read it."""

    guest_id: str
    name: str
    email: str | None


@dataclass(frozen=True, slots=True)
class OccasionData:
    """The occasion as an action may read it."""

    occasion_id: str
    name: str
    starts_on: str


@dataclass(frozen=True, slots=True)
class EventData:
    """An event of the occasion as an action may read it."""

    event_id: str
    name: str
    starts_at: str | None


@dataclass(frozen=True, slots=True)
class PlatformLoaders:
    """How the framework reads the occasion's data (each called at most once, lazily)."""

    occasion: Callable[[], OccasionData]
    events: Callable[[], Sequence[EventData]]
    guests: Callable[[], Sequence[GuestData]]


class PlatformData:
    """The occasion's data, gated by the connection's action keys.

    Reading what the keys do not allow raises :class:`~tovplus.errors.Forbidden`; what is
    allowed is loaded on first use, as of the moment the action runs (so a coalesced export
    carries every guest added before it started).
    """

    _GATES: ClassVar[dict[str, str]] = {
        "occasion": "occasion.read",
        "events": "events.read",
        "guests": "guests.read",
    }

    def __init__(self, action_keys: frozenset[str], loaders: PlatformLoaders) -> None:
        self.action_keys = action_keys
        self._loaders = loaders
        self._cache: dict[str, Any] = {}

    def _read(self, what: str) -> Any:
        gate = self._GATES[what]
        if gate not in self.action_keys:
            raise Forbidden(f"This connection may not read {what}: it lacks the {gate} action key.")
        if what not in self._cache:
            self._cache[what] = getattr(self._loaders, what)()
        return self._cache[what]

    def occasion(self) -> OccasionData:
        """The occasion (needs ``occasion.read``)."""
        value: OccasionData = self._read("occasion")
        return value

    def events(self) -> list[EventData]:
        """The occasion's events (needs ``events.read``)."""
        return list(self._read("events"))

    def guests(self) -> list[GuestData]:
        """The occasion's guests (needs ``guests.read``)."""
        return list(self._read("guests"))


@dataclass(slots=True)
class ActionContext:
    """What ``Adapter.perform`` gets.

    ``action_run_id`` is the same on every attempt of the run: send it as ``Idempotency-Key``
    (``idempotency_key`` is the same value). ``secrets`` and ``access_token`` must never be
    logged, returned or stored; an OAuth2 connection has no ``secrets``, and ``http`` sends its token.
    """

    action_run_id: str
    connection_id: str
    occasion_id: str
    attempt: int
    config: Mapping[str, Any]
    secrets: Mapping[str, str] = field(repr=False)
    http: httpx.Client = field(repr=False)
    data: PlatformData = field(repr=False)
    now: datetime = field(repr=False)
    #: An OAuth2 connection's access token when the run started (``http`` sends the current one).
    access_token: str | None = field(default=None, repr=False)

    @property
    def idempotency_key(self) -> str:
        """The header value that makes a repeated attempt harmless at the partner."""
        return self.action_run_id


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What a successful action did: a short summary and details (shown redacted; no secrets)."""

    summary: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


def action_problems(actions: Any, action_keys: Sequence[str], performs: bool) -> list[str]:
    """What is wrong with an adapter's ``actions`` declaration (the registry refuses it then)."""
    if not isinstance(actions, tuple) or not all(isinstance(a, ActionSpec) for a in actions):
        return ["actions must be a tuple of ActionSpec (tovplus.integrations.actions)"]
    problems = []
    keys = [a.key for a in actions]
    if len(set(keys)) != len(keys):
        problems.append("action keys declared twice")
    for spec in actions:
        missing = sorted(set(spec.requires) - set(action_keys))
        if missing:
            problems.append(f"action {spec.key!r} requires {', '.join(missing)}, which action_keys lack")
    if actions and not performs:
        problems.append("actions are declared but perform() is not implemented")
    return problems
