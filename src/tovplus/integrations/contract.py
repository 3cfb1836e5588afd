"""The adapter contract: what a partner integration declares and may implement.

An adapter is a class with declarative attributes (identity, fields, action keys,
flags, ``auth``) and up to five hooks:

* ``validate(ctx)``: extra rules beyond the field declarations (optional);
* ``sync(ctx)``: pull the partner's state (when ``supports_background_sync``);
* ``map_callback(payload, ctx)``: turn an inbound payload into records (when
  ``supports_inbound_callbacks``);
* ``check(ctx)``: a live credential check against the partner (optional; the catalog's
  ``supports_credential_check`` says whether it is implemented);
* ``perform(action_key, input, ctx)``: push to the partner (``integrations/actions.py``).

``auth`` (``integrations/auth.py``) says how the adapter authenticates: typed secrets or OAuth2,
whose flow, tokens and refresh the framework owns.

The framework owns everything else: storage, encryption, principals, retries,
health and activity. Adapters never see a database session or an HTTP request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeAlias

from tovplus.errors import FieldIssue
from tovplus.integrations.actions import ActionContext, ActionResult, ActionSpec
from tovplus.integrations.auth import ApiKeyAuth, AuthorizationStatus, AuthSpec, OAuth2Auth
from tovplus.integrations.fields import Field, check_fields, is_unset
from tovplus.integrations.politeness import PartnerLimits
from tovplus.integrations.sync_state import MemoryCheckpoints, RecordDelete, SyncState
from tovplus.integrations.wording import Wording

if TYPE_CHECKING:
    import httpx

#: Version of this contract. An adapter declares the version it was written for;
#: the registry refuses adapters whose version is not in ``SUPPORTED_CONTRACT_VERSIONS``.
CONTRACT_VERSION = 1
SUPPORTED_CONTRACT_VERSIONS = frozenset({1})


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    BIDIRECTIONAL = "bidirectional"


class Mode(StrEnum):
    PULL = "pull"
    PUSH = "push"
    CALLBACK = "callback"
    MANUAL = "manual"


class ScopeType(StrEnum):
    PLATFORM = "platform"
    OCCASION = "occasion"
    EVENT = "event"


class Health(StrEnum):
    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILING = "failing"


class CallbackAuth(StrEnum):
    """How a partner proves a callback is theirs."""

    #: The connection's issued key in the ``x-tov-integration-secret`` header.
    SHARED_SECRET = "shared_secret"  # noqa: S105 - a mode name, not a secret
    #: Standard Webhooks signature headers, keyed by the issued key; the header is also accepted.
    STANDARD_WEBHOOKS = "standard_webhooks"


#: Action keys the platform knows; an adapter may only declare these.
KNOWN_ACTION_KEYS = frozenset({"occasion.read", "events.read", "guests.read"})


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a connection's principal may act."""

    type: ScopeType
    occasion_id: str | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class ValidationResult:
    errors: tuple[FieldIssue, ...] = ()
    warnings: tuple[FieldIssue, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, list[dict[str, str]]]:
        return {
            "errors": [e.as_dict() for e in self.errors],
            "warnings": [w.as_dict() for w in self.warnings],
        }


@dataclass(frozen=True, slots=True)
class ValidationContext:
    """What ``Adapter.validate`` may look at. Secret *values* are never shown to it."""

    config: Mapping[str, Any]
    secrets_present: frozenset[str]
    scope: Scope
    allow_private_urls: bool = False
    #: An OAuth2 connection's grant (``None`` for an api-key adapter or a grant never asked for).
    authorization: AuthorizationStatus | None = None


@dataclass(frozen=True, slots=True)
class RecordUpsert:
    """A synced record: created or replaced by ``(kind, external_id)``."""

    kind: str
    external_id: str
    data: Mapping[str, Any]
    updated_at: datetime | None = None


#: One change a sync reports: a record created or replaced, or a record deleted.
RecordChange: TypeAlias = RecordUpsert | RecordDelete


class Checkpointer(Protocol):
    """Commits a page of changes with the state that continues after it (the framework's side)."""

    def __call__(self, state: SyncState, records: Sequence[RecordChange]) -> None: ...


@dataclass(slots=True)
class SyncContext:
    """What ``Adapter.sync`` gets: its config, its decrypted secrets, an HTTP client.

    ``http`` refuses non-public addresses unless private URLs are allowed, and has
    timeouts set. ``last_success_at`` is when the previous sync succeeded (use it for
    incremental pulls). ``secrets`` must never be logged, returned or stored. ``state``,
    ``full`` and :meth:`checkpoint` are described in :mod:`tovplus.integrations.sync_state`.
    For an OAuth2 adapter, ``secrets`` is empty, ``access_token`` is the token valid when the
    run started and ``http`` sends the current one (refreshing once after a 401).
    """

    connection_id: str
    occasion_id: str
    config: Mapping[str, Any]
    secrets: Mapping[str, str]
    http: httpx.Client
    last_success_at: datetime | None
    now: datetime
    state: SyncState = None
    #: A full run: everything is asked for (no state, no ``last_success_at``); unseen records go.
    full: bool = False
    checkpointer: Checkpointer = field(default_factory=MemoryCheckpoints, repr=False)
    access_token: str | None = field(default=None, repr=False)

    def checkpoint(self, state: SyncState, records: Sequence[RecordUpsert | RecordDelete] = ()) -> None:
        """Commit ``records`` now with the ``state`` that continues after them (``ctx.state``)."""
        self.checkpointer(state, records)
        self.state = state


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What a successful sync found.

    ``drift`` lists human-readable reasons why the partner's view no longer matches
    the configuration; any reason makes health ``degraded`` while records still count.
    """

    records: Sequence[RecordUpsert | RecordDelete] = ()
    drift: Sequence[str] = ()
    summary: str = ""
    #: The state to hand the next run; ``None`` keeps ``ctx.state`` (see ``sync_state``).
    state: SyncState = None


@dataclass(frozen=True, slots=True)
class CallbackContext:
    """What ``Adapter.map_callback`` gets besides the payload."""

    connection_id: str
    occasion_id: str
    config: Mapping[str, Any]
    event_belongs_to_occasion: Callable[[str], bool] = field(repr=False)


@dataclass(frozen=True, slots=True)
class CallbackResult:
    """The effect of an accepted callback: records to upsert and a short summary."""

    records: Sequence[RecordUpsert]
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CheckContext:
    """What ``Adapter.check`` gets: the stored credentials (or access token) and the safe client.

    Nothing from a check is stored but its outcome; ``secrets`` and ``access_token`` must never
    be logged or returned.
    """

    connection_id: str
    occasion_id: str
    config: Mapping[str, Any]
    secrets: Mapping[str, str] = field(repr=False)
    http: httpx.Client = field(repr=False)
    now: datetime = field(repr=False)
    access_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A check the partner answered: what it said (``"Signed in as Acme Print"``) and any drift.

    Rejected credentials are not a result: ``check`` raises ``CredentialsRejected`` for them
    (and ``PartnerUnavailable`` when the partner could not say).
    """

    summary: str = ""
    drift: Sequence[str] = ()


class Adapter:
    """Base class of every partner adapter. Subclass it and fill in the class attributes."""

    contract_version: ClassVar[int] = CONTRACT_VERSION
    integration_key: ClassVar[str]
    name: ClassVar[str]
    description: ClassVar[str]
    category: ClassVar[str]
    direction: ClassVar[Direction]
    mode: ClassVar[Mode]
    capabilities: ClassVar[tuple[str, ...]] = ()
    action_keys: ClassVar[tuple[str, ...]] = ()
    config_fields: ClassVar[tuple[Field, ...]] = ()
    secret_fields: ClassVar[tuple[Field, ...]] = ()
    supports_background_sync: ClassVar[bool] = False
    supports_inbound_callbacks: ClassVar[bool] = False
    callback_auth: ClassVar[CallbackAuth] = CallbackAuth.SHARED_SECRET
    #: Scope types a planner may choose for this adapter's principal.
    allowed_scopes: ClassVar[frozenset[ScopeType]] = frozenset(ScopeType)
    #: How often background sync runs unless a connection overrides it.
    default_sync_interval: ClassVar[timedelta] = timedelta(minutes=15)
    #: What the partner takes (integrations/politeness.py); every connection of it shares the limits.
    partner_limits: ClassVar[PartnerLimits | None] = None
    #: Plain labels for its codes (action keys, capabilities, statuses) and its partner's docs.
    wording: ClassVar[Wording] = Wording()
    #: What the adapter pushes to its partner (``integrations/actions.py``); run by ``perform``.
    actions: ClassVar[tuple[ActionSpec, ...]] = ()
    #: How it authenticates (``integrations/auth.py``): typed ``secret_fields``, or OAuth2.
    auth: ClassVar[AuthSpec] = ApiKeyAuth()

    # --- hooks -------------------------------------------------------------------

    def validate(self, ctx: ValidationContext) -> Iterable[FieldIssue]:
        """Extra rules beyond the field declarations. Return errors; never raise."""
        return ()

    def warnings(self, ctx: ValidationContext) -> Iterable[FieldIssue]:
        """Advice that does not block enabling. Return warnings; never raise."""
        return ()

    def sync(self, ctx: SyncContext) -> SyncResult:
        """Pull the partner's state. Raise ``CredentialsRejected``, ``PartnerUnavailable``
        or ``DriftDetected`` (from ``tovplus.errors``) for the failures they name."""
        raise NotImplementedError(f"{self.integration_key} does not support background sync")

    def map_callback(self, payload: Any, ctx: CallbackContext) -> CallbackResult:
        """Map an inbound payload to records; raise ``CallbackRejected`` with field issues."""
        raise NotImplementedError(f"{self.integration_key} does not accept callbacks")

    def perform(self, action_key: str, input: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
        """Run one declared action; raise the same typed errors as ``sync``."""
        raise NotImplementedError(f"{self.integration_key} has no action {action_key!r}")

    def check(self, ctx: CheckContext) -> CheckResult:
        """Ask the partner whether the stored credentials work. Raise ``CredentialsRejected``
        when they are refused, ``PartnerUnavailable`` when the partner cannot say."""
        raise NotImplementedError(f"{self.integration_key} has no credential check")

    # --- framework helpers ---------------------------------------------------------

    def config_field(self, key: str) -> Field | None:
        return next((f for f in self.config_fields if f.key == key), None)

    def secret_field(self, key: str) -> Field | None:
        return next((f for f in self.secret_fields if f.key == key), None)

    def action(self, key: str) -> ActionSpec | None:
        return next((a for a in self.actions if a.key == key), None)

    @property
    def supports_credential_check(self) -> bool:
        """Whether the adapter implements :meth:`check`."""
        return type(self).check is not Adapter.check

    @property
    def oauth2(self) -> OAuth2Auth | None:
        """The adapter's OAuth2 declaration, or ``None`` for an api-key adapter."""
        return self.auth if isinstance(self.auth, OAuth2Auth) else None

    @property
    def event_subscriptions(self) -> list[str]:
        """The platform events that queue this adapter's actions by themselves."""
        return sorted({event for a in self.actions for event in a.subscribes})

    def describe(self) -> dict[str, Any]:
        """The catalog entry of this adapter (the contract's ``Adapter`` object)."""
        return {
            "integration_key": self.integration_key,
            "name": self.name,
            "description": self.description,
            "category": self.category,
            "direction": self.direction.value,
            "mode": self.mode.value,
            "capabilities": list(self.capabilities),
            "action_keys": list(self.action_keys),
            "config_fields": [f.describe() for f in self.config_fields],
            "secret_fields": [f.describe(secret=True) for f in self.secret_fields],
            "supports_background_sync": self.supports_background_sync,
            "supports_inbound_callbacks": self.supports_inbound_callbacks,
            "partner_limits": self.partner_limits.describe() if self.partner_limits else None,
            "callback_auth": self.callback_auth.value,
            "labels": self.wording.describe(self.action_keys),
            "actions": [a.describe() for a in self.actions],
            "event_subscriptions": self.event_subscriptions,
            "auth": self.auth.describe(),
            "supports_credential_check": self.supports_credential_check,
        }


def validate_connection(adapter: Adapter, ctx: ValidationContext) -> ValidationResult:
    """Run the declared-field checks and the adapter's own rules.

    Never raises for bad input: an adapter hook that crashes becomes one error on
    the connection as a whole, so a buggy plugin cannot break the planner's page.
    """
    errors, warnings = check_fields(
        adapter.config_fields, ctx.config, "config", allow_private_urls=ctx.allow_private_urls
    )
    for f in adapter.secret_fields:
        if f.required and f.key not in ctx.secrets_present:
            errors.append(FieldIssue(f"secrets.{f.key}", "required", f"{f.label} is required."))
    if adapter.oauth2 is not None and ctx.authorization in (None, AuthorizationStatus.PENDING):
        errors.append(
            FieldIssue("authorization", "required", f"Connect with {adapter.name} to grant access.")
        )
    if ctx.scope.type not in adapter.allowed_scopes:
        errors.append(
            FieldIssue(
                "scope.type", "not_allowed", f"This integration cannot be scoped to a {ctx.scope.type}."
            )
        )
    try:
        extra_errors = list(adapter.validate(ctx))
        extra_warnings = list(adapter.warnings(ctx))
        for issue in (*extra_errors, *extra_warnings):
            if not isinstance(issue, FieldIssue):
                raise TypeError(f"validate() and warnings() must yield FieldIssue, not {issue!r}")
    except Exception as exc:  # a plugin bug must not take the page down
        extra_errors = [
            FieldIssue("connection", "validation_crashed", f"The adapter's validation failed: {exc!r}")
        ]
        extra_warnings = []
    # the declared check speaks first: the adapter's rules add no second error to the same field
    declared = {e.field for e in errors}
    errors.extend(issue for issue in extra_errors if issue.field not in declared)
    warnings.extend(extra_warnings)
    return ValidationResult(tuple(errors), tuple(warnings))


def check_secret_values(
    adapter: Adapter, secrets: Mapping[str, Any], *, allow_private_urls: bool
) -> list[FieldIssue]:
    """Check secret values given on input (type and declared format) without keeping them."""
    present = {k: v for k, v in secrets.items() if not is_unset(v)}
    errors, _ = check_fields(adapter.secret_fields, present, "secrets", allow_private_urls=allow_private_urls)
    return [e for e in errors if e.code != "required"]
