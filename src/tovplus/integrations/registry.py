"""The adapter registry: the shipped adapters plus those found through entry points.

Third-party packages declare ``[project.entry-points."tovplus.adapters"]`` with a
name pointing at an :class:`Adapter` subclass (or an instance). A plugin that
fails to import, has a wrong contract version or inconsistent declarations is
reported in :attr:`AdapterRegistry.skipped` and left out; it never stops the service.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import EntryPoint, entry_points

from tovplus.errors import ConfigurationError, NotFound
from tovplus.integrations.actions import action_problems
from tovplus.integrations.auth import auth_problems
from tovplus.integrations.contract import (
    KNOWN_ACTION_KEYS,
    SUPPORTED_CONTRACT_VERSIONS,
    Adapter,
    CallbackAuth,
    Direction,
    Mode,
    ScopeType,
)
from tovplus.integrations.fields import Field

ENTRY_POINT_GROUP = "tovplus.adapters"
_KEY_RE = re.compile(r"[a-z][a-z0-9_]{1,63}")

log = logging.getLogger(__name__)


class DuplicateAdapterError(ConfigurationError):
    code = "duplicate_adapter"


class InvalidAdapterError(ConfigurationError):
    code = "invalid_adapter"


@dataclass(frozen=True, slots=True)
class SkippedPlugin:
    """An entry point the registry could not load, and why."""

    name: str
    target: str
    reason: str


def declaration_problems(adapter: Adapter) -> list[str]:
    """Everything wrong with an adapter's declarations (empty when it is sound).

    Never raises, whatever a plugin declares: each problem is one sentence naming
    the attribute, so the registry can report the plugin and skip it.
    """
    problems: list[str] = []
    version = getattr(adapter, "contract_version", None)
    if type(version) is not int or version not in SUPPORTED_CONTRACT_VERSIONS:
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_CONTRACT_VERSIONS))
        problems.append(
            f"written for adapter contract version {version!r}, but this TOV Plus supports {supported}: "
            f"install a release of the plugin written for contract version {supported}, "
            f"or a TOV Plus that supports {version!r}"
        )
        return problems
    for attr in ("integration_key", "name", "description", "category"):
        if not isinstance(getattr(adapter, attr, None), str) or not getattr(adapter, attr):
            problems.append(f"{attr} must be a non-empty string")
    key = getattr(adapter, "integration_key", "")
    if isinstance(key, str) and key and not _KEY_RE.fullmatch(key):
        problems.append(f"integration_key {key!r} must be lower snake_case, 2-64 characters")
    direction = getattr(adapter, "direction", None)
    if not isinstance(direction, Direction):
        problems.append("direction must be a Direction")
    mode = getattr(adapter, "mode", None)
    if not isinstance(mode, Mode):
        problems.append("mode must be a Mode")
    for attr in ("capabilities", "action_keys"):
        value = getattr(adapter, attr, None)
        if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
            problems.append(f"{attr} must be a tuple of strings")
    action_keys = getattr(adapter, "action_keys", ())
    if isinstance(action_keys, tuple):
        unknown = sorted({k for k in action_keys if isinstance(k, str)} - KNOWN_ACTION_KEYS)
        if unknown:
            problems.append(f"unknown action keys: {', '.join(unknown)}")
    keys: list[str] = []
    for attr in ("config_fields", "secret_fields"):
        fields = getattr(adapter, attr, None)
        if not isinstance(fields, tuple) or not all(isinstance(f, Field) for f in fields):
            problems.append(f"{attr} must be a tuple of Field")
        else:
            keys.extend(f.key for f in fields)
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        problems.append(f"field keys declared twice: {', '.join(duplicated)}")
    flags: dict[str, object] = {}
    for attr in ("supports_background_sync", "supports_inbound_callbacks"):
        flags[attr] = getattr(adapter, attr, None)
        if not isinstance(flags[attr], bool):
            problems.append(f"{attr} must be True or False")
    if not isinstance(getattr(adapter, "callback_auth", None), CallbackAuth):
        problems.append("callback_auth must be a CallbackAuth")
    scopes = getattr(adapter, "allowed_scopes", None)
    if not isinstance(scopes, frozenset) or not scopes or not all(isinstance(t, ScopeType) for t in scopes):
        problems.append("allowed_scopes must be a non-empty frozenset of ScopeType")
    interval = getattr(adapter, "default_sync_interval", None)
    if not isinstance(interval, timedelta) or interval <= timedelta(0):
        problems.append("default_sync_interval must be a positive timedelta")
    if flags["supports_background_sync"] is True and type(adapter).sync is Adapter.sync:
        problems.append("supports_background_sync is set but sync() is not implemented")
    if flags["supports_inbound_callbacks"] is True and type(adapter).map_callback is Adapter.map_callback:
        problems.append("supports_inbound_callbacks is set but map_callback() is not implemented")
    if mode is Mode.PULL and flags["supports_background_sync"] is False:
        problems.append("mode 'pull' needs supports_background_sync")
    performs = type(adapter).perform is not Adapter.perform
    config_keys = frozenset(f.key for f in getattr(adapter, "config_fields", ()) if isinstance(f, Field))
    problems += auth_problems(
        getattr(adapter, "auth", None), config_keys, len(getattr(adapter, "secret_fields", ()) or ())
    )
    problems += action_problems(
        getattr(adapter, "actions", ()), getattr(adapter, "action_keys", ()), performs
    )
    return problems


class AdapterRegistry:
    """Holds adapters by ``integration_key``, in registration order."""

    def __init__(self) -> None:
        self._adapters: dict[str, Adapter] = {}
        self.skipped: list[SkippedPlugin] = []

    def register(self, adapter: Adapter | type[Adapter]) -> Adapter:
        """Add an adapter; raises on duplicate keys or unsound declarations."""
        instance = adapter() if isinstance(adapter, type) else adapter
        if not isinstance(instance, Adapter):
            raise InvalidAdapterError(f"{adapter!r} is not a tovplus Adapter")
        problems = declaration_problems(instance)
        if problems:
            name = getattr(instance, "integration_key", type(instance).__name__)
            raise InvalidAdapterError(f"adapter {name!r} is invalid: {'; '.join(problems)}")
        if instance.integration_key in self._adapters:
            raise DuplicateAdapterError(
                f"an adapter with key {instance.integration_key!r} is already registered"
            )
        self._adapters[instance.integration_key] = instance
        return instance

    def get(self, integration_key: str) -> Adapter:
        try:
            return self._adapters[integration_key]
        except KeyError:
            raise NotFound(f"There is no integration called {integration_key!r}.") from None

    def find(self, integration_key: str) -> Adapter | None:
        return self._adapters.get(integration_key)

    def __contains__(self, integration_key: object) -> bool:
        return integration_key in self._adapters

    def __iter__(self) -> Iterator[Adapter]:
        return iter(self._adapters.values())

    def __len__(self) -> int:
        return len(self._adapters)

    def load_entry_points(self, points: Iterable[EntryPoint] | None = None) -> None:
        """Register every adapter of the ``tovplus.adapters`` group; skip and report broken ones."""
        found = entry_points(group=ENTRY_POINT_GROUP) if points is None else points
        for point in sorted(found, key=lambda p: p.name):
            try:
                self.register(point.load())
            except Exception as exc:  # a broken plugin is reported, never fatal
                reason = (
                    exc.message if isinstance(exc, ConfigurationError) else f"{type(exc).__name__}: {exc}"
                )
                self.skipped.append(SkippedPlugin(point.name, point.value, reason))
                log.warning("skipped adapter plugin %s (%s): %s", point.name, point.value, reason)


def builtin_adapters() -> list[type[Adapter]]:
    """The adapters that ship with TOV Plus."""
    from tovplus.integrations.adapters.guest_messaging import GuestMessagingAdapter
    from tovplus.integrations.adapters.printing_partner import PrintingPartnerAdapter
    from tovplus.integrations.adapters.venue_ops import VenueOpsAdapter

    return [PrintingPartnerAdapter, VenueOpsAdapter, GuestMessagingAdapter]


def default_registry(*, plugins: bool = True) -> AdapterRegistry:
    """A registry with the shipped adapters and, unless ``plugins`` is false, the installed plugins."""
    registry = AdapterRegistry()
    for adapter in builtin_adapters():
        registry.register(adapter)
    if plugins:
        registry.load_entry_points()
    return registry
