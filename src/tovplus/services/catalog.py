"""The catalog of installed adapters, as typed views (the contract's ``Adapter`` object)."""

from __future__ import annotations

import weakref
from typing import Literal

from tovplus.integrations.contract import Adapter
from tovplus.runtime import Runtime
from tovplus.runtime.views import View


class FieldModel(View):
    """A declared config or secret field, as the catalog shows it."""

    key: str
    label: str
    type: Literal["string", "url", "integer", "boolean", "enum", "string_list"]
    required: bool
    help: str | None
    choices: list[str] | None
    #: The longest value (of each item, for ``string_list``) the field takes, when it says.
    max_length: int | None = None


class LabelsModel(View):
    """Plain words for an adapter's codes (pages show them with the code in small type)."""

    action_keys: dict[str, str]
    capabilities: dict[str, str]
    record_kinds: dict[str, str]
    statuses: dict[str, str]
    partner_docs_url: str | None


class ActionSpecModel(View):
    """One action an adapter can perform (``integrations/actions.py``), as the catalog shows it."""

    key: str
    label: str
    description: str
    input_fields: list[FieldModel]
    #: The action keys a connection needs for it (else it cannot be run or subscribed).
    requires: list[str]
    #: The platform events that queue it by themselves.
    subscribes: list[str]


class AuthModel(View):
    """How the adapter authenticates: ``api_key`` (typed secrets) or ``oauth2`` (granted at the partner)."""

    type: Literal["api_key", "oauth2"]
    #: The scopes an ``oauth2`` adapter asks for (absent for ``api_key``).
    scopes: list[str] | None = None
    #: Whether the authorization request carries a PKCE (S256) challenge.
    pkce: bool | None = None


class AdapterModel(View):
    """One installed adapter: what it does and the fields a connection of it takes."""

    integration_key: str
    name: str
    description: str
    category: str
    direction: Literal["inbound", "outbound", "bidirectional"]
    mode: Literal["pull", "push", "callback", "manual"]
    capabilities: list[str]
    action_keys: list[str]
    config_fields: list[FieldModel]
    secret_fields: list[FieldModel]
    supports_background_sync: bool
    supports_inbound_callbacks: bool
    #: ``{"requests_per_second", "max_concurrent"}`` the framework keeps calls within, or null.
    partner_limits: dict[str, float | int | None] | None = None
    #: How its partner proves callbacks: ``shared_secret`` (the header) or ``standard_webhooks``.
    callback_auth: Literal["shared_secret", "standard_webhooks"] = "shared_secret"
    labels: LabelsModel | None = None
    actions: list[ActionSpecModel]
    event_subscriptions: list[str]
    auth: AuthModel
    #: Whether ``POST …/check`` can ask the partner if the stored credentials work.
    supports_credential_check: bool


#: An adapter's declarations do not change while it is loaded: each view is built once.
_views: weakref.WeakKeyDictionary[Adapter, AdapterModel] = weakref.WeakKeyDictionary()


def adapter_view(adapter: Adapter) -> AdapterModel:
    """The catalog entry of one adapter (validated against the contract once per adapter)."""
    view = _views.get(adapter)
    if view is None:
        view = _views[adapter] = AdapterModel.model_validate(adapter.describe())
    return view


def catalog(rt: Runtime) -> list[AdapterModel]:
    """Every installed adapter's catalog entry, in registry order."""
    return [adapter_view(adapter) for adapter in rt.registry]
