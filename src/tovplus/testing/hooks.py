"""Run an adapter's hooks the way the framework does: validation, sync and callback mapping.

    partner = FakePartner({"GET /accounts/acct-1/orders": {"orders": [{"id": "ord-1"}]}})
    result = run_sync(MyAdapter, config=CONFIG, secrets=SECRETS, partner=partner)
    assert "ord-1" in records_by_id(result)

The contexts are built as the API and the worker build them, for a test connection
(``con_test``) in a test occasion (``occ_test``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx

from tovplus.integrations.contract import (
    Adapter,
    CallbackContext,
    CallbackResult,
    RecordUpsert,
    Scope,
    ScopeType,
    SyncContext,
    SyncResult,
    ValidationContext,
    ValidationResult,
    check_secret_values,
    validate_connection,
)
from tovplus.integrations.sync_state import MemoryCheckpoints, SyncState
from tovplus.testing.fake_partner import FakePartner

CONNECTION_ID = "con_test"
OCCASION_ID = "occ_test"


def instance_of(adapter: Adapter | type[Adapter]) -> Adapter:
    """The adapter itself, or a new instance when given its class."""
    return adapter() if isinstance(adapter, type) else adapter


def default_scope(adapter: Adapter | type[Adapter]) -> Scope:
    """A scope the adapter allows, inside the test occasion (``occ_test``)."""
    allowed = instance_of(adapter).allowed_scopes
    for kind in (ScopeType.OCCASION, ScopeType.EVENT, ScopeType.PLATFORM):
        if kind in allowed:
            if kind is ScopeType.PLATFORM:
                return Scope(kind)
            event_id = "evt_test" if kind is ScopeType.EVENT else None
            return Scope(kind, OCCASION_ID, event_id)
    return Scope(ScopeType.OCCASION, OCCASION_ID)


def run_validation(
    adapter: Adapter | type[Adapter],
    *,
    config: Mapping[str, Any],
    secrets: Mapping[str, Any] | Iterable[str] = (),
    scope: Scope | None = None,
    allow_private_urls: bool = False,
) -> ValidationResult:
    """Validate a connection as the API does when it is created, edited or enabled.

    ``secrets`` is either the secret values (their format is checked too) or just the
    keys of the secrets that are set. Private URLs are refused unless ``allow_private_urls``.
    """
    instance = instance_of(adapter)
    extra = []
    if isinstance(secrets, Mapping):
        extra = check_secret_values(instance, secrets, allow_private_urls=allow_private_urls)
        present = frozenset(k for k, v in secrets.items() if v not in (None, ""))
    else:
        present = frozenset(secrets)
    ctx = ValidationContext(
        config=dict(config),
        secrets_present=present,
        scope=scope or default_scope(instance),
        allow_private_urls=allow_private_urls,
    )
    result = validate_connection(instance, ctx)
    return ValidationResult((*extra, *result.errors), result.warnings)


def sync_context(
    *,
    config: Mapping[str, Any],
    secrets: Mapping[str, str],
    http: httpx.Client,
    last_success_at: datetime | None = None,
    now: datetime | None = None,
    connection_id: str = CONNECTION_ID,
    occasion_id: str = OCCASION_ID,
    state: SyncState = None,
    full: bool = False,
) -> SyncContext:
    """A :class:`SyncContext` like the one the worker builds; its checkpoints are kept in memory
    (``ctx.checkpointer.pages``)."""
    return SyncContext(
        connection_id=connection_id,
        occasion_id=occasion_id,
        config=dict(config),
        secrets=dict(secrets),
        http=http,
        last_success_at=None if full else last_success_at,
        now=now or datetime.now(UTC),
        state=None if full else state,
        full=full,
        checkpointer=MemoryCheckpoints(),
    )


def run_sync(
    adapter: Adapter | type[Adapter],
    *,
    config: Mapping[str, Any],
    secrets: Mapping[str, str],
    partner: FakePartner,
    last_success_at: datetime | None = None,
    now: datetime | None = None,
    check_validation: bool = True,
    state: SyncState = None,
    full: bool = False,
) -> SyncResult:
    """Run the adapter's ``sync`` against ``partner`` and return its :class:`SyncResult`.

    ``state`` is what the previous run left (``ctx.state``); ``full`` asks for everything. The
    result holds every page: the records given to ``ctx.checkpoint`` first, then the returned
    ones, and ``state`` is what the framework would store (``result.state``, else ``ctx.state``).

    Typed errors (``CredentialsRejected``, ``PartnerUnavailable``, ``DriftDetected``)
    propagate, so test them with ``pytest.raises``. The framework only syncs enabled
    connections, so unless ``check_validation`` is false the config and secrets must
    validate first (private URLs allowed); otherwise this raises ``AssertionError``.
    """
    instance = instance_of(adapter)
    if check_validation:
        result = run_validation(instance, config=config, secrets=secrets, allow_private_urls=True)
        if result.errors:
            problems = "; ".join(f"{e.field}: {e.code}" for e in result.errors)
            raise AssertionError(f"this config would not pass validation, so it would never sync: {problems}")
    with partner.client() as http:
        ctx = sync_context(
            config=config,
            secrets=secrets,
            http=http,
            last_success_at=last_success_at,
            now=now,
            state=state,
            full=full,
        )
        synced = instance.sync(ctx)
    assert isinstance(ctx.checkpointer, MemoryCheckpoints)
    return replace(
        synced,
        records=[*ctx.checkpointer.records, *synced.records],
        state=ctx.state if synced.state is None else synced.state,
    )


def callback_context(
    *,
    config: Mapping[str, Any] | None = None,
    events: Iterable[str] | Callable[[str], bool] = (),
    connection_id: str = CONNECTION_ID,
    occasion_id: str = OCCASION_ID,
) -> CallbackContext:
    """A :class:`CallbackContext`; ``events`` are the event ids that belong to the occasion."""
    if callable(events):
        belongs = events
    else:
        known = frozenset(events)

        def belongs(event_id: str) -> bool:
            return event_id in known

    return CallbackContext(
        connection_id=connection_id,
        occasion_id=occasion_id,
        config=dict(config or {}),
        event_belongs_to_occasion=belongs,
    )


def run_callback(
    adapter: Adapter | type[Adapter],
    payload: Any,
    *,
    config: Mapping[str, Any] | None = None,
    events: Iterable[str] | Callable[[str], bool] = (),
) -> CallbackResult:
    """Map one inbound payload as the callback route does; ``CallbackRejected`` propagates."""
    return instance_of(adapter).map_callback(payload, callback_context(config=config, events=events))


def records_by_id(result: SyncResult | CallbackResult) -> dict[str, Mapping[str, Any]]:
    """The records' data keyed by ``external_id`` (handy in assertions)."""
    return {r.external_id: r.data for r in result.records if isinstance(r, RecordUpsert)}


__all__ = [
    "CONNECTION_ID",
    "OCCASION_ID",
    "callback_context",
    "default_scope",
    "records_by_id",
    "run_callback",
    "run_sync",
    "run_validation",
    "sync_context",
]
