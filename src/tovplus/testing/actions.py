"""Running an adapter's actions as the framework does, against a :class:`FakePartner`.

    partner = FakePartner({"PUT /accounts/acct-1/guest-lists/occ_test": {}})
    result = run_action(MyAdapter, "export_guests", config=CONFIG, secrets=SECRETS,
                        partner=partner, guests=[GuestData("g1", "Ola", None)])
    assert partner.requests[0].headers["idempotency-key"] == RUN_ID

The input is checked against the action's declared fields first (``InvalidInput`` with
``input.<key>`` fields, as the API answers 422); the occasion data the context offers is only
what ``action_keys`` allow (all of the adapter's by default). An OAuth2 adapter's action runs
with a token from a :class:`~tovplus.testing.oauth.FakeAuthorizationServer` (see ``run_sync``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from tovplus.integrations.actions import (
    ActionContext,
    ActionResult,
    EventData,
    GuestData,
    OccasionData,
    PlatformData,
    PlatformLoaders,
)
from tovplus.integrations.contract import Adapter
from tovplus.testing.fake_partner import FakePartner
from tovplus.testing.hooks import CONNECTION_ID, OCCASION_ID, instance_of
from tovplus.testing.oauth import FakeAuthorizationServer, partner_http

#: The action run id (and so the ``Idempotency-Key``) of a run made here.
RUN_ID = "arun_test0000000000000001"


def action_context(
    *,
    config: Mapping[str, Any],
    secrets: Mapping[str, str],
    http: httpx.Client,
    action_keys: Sequence[str] = ("occasion.read", "events.read", "guests.read"),
    guests: Sequence[GuestData] = (),
    events: Sequence[EventData] = (),
    occasion: OccasionData | None = None,
    run_id: str = RUN_ID,
    attempt: int = 1,
    occasion_id: str = OCCASION_ID,
    access_token: str | None = None,
) -> ActionContext:
    """An :class:`ActionContext` like the one the worker builds, over the given occasion data."""
    the_occasion = occasion or OccasionData(occasion_id, "Test occasion", "2027-06-12")
    loaders = PlatformLoaders(
        occasion=lambda: the_occasion, events=lambda: list(events), guests=lambda: list(guests)
    )
    return ActionContext(
        action_run_id=run_id,
        connection_id=CONNECTION_ID,
        occasion_id=occasion_id,
        attempt=attempt,
        config=dict(config),
        secrets=dict(secrets),
        http=http,
        data=PlatformData(frozenset(action_keys), loaders),
        now=datetime.now(UTC),
        access_token=access_token,
    )


def run_action(
    adapter: Adapter | type[Adapter],
    action_key: str,
    input: Mapping[str, Any] | None = None,
    *,
    config: Mapping[str, Any],
    secrets: Mapping[str, str] | None = None,
    partner: FakePartner | FakeAuthorizationServer,
    action_keys: Sequence[str] | None = None,
    guests: Sequence[GuestData] = (),
    events: Sequence[EventData] = (),
    run_id: str = RUN_ID,
) -> ActionResult:
    """Check the input and run ``perform`` against ``partner``; typed errors propagate."""
    instance = instance_of(adapter)
    spec = instance.action(action_key)
    if spec is None:
        raise AssertionError(f"{instance.integration_key} declares no action {action_key!r}")
    checked = spec.check_input(dict(input or {}), allow_private_urls=True)
    keys = instance.action_keys if action_keys is None else action_keys
    with partner_http(partner, oauth=instance.oauth2 is not None) as (http, token):
        ctx = action_context(
            config=config,
            secrets=secrets or {},
            http=http,
            action_keys=keys,
            guests=guests,
            events=events,
            run_id=run_id,
            access_token=token,
        )
        return instance.perform(action_key, checked, ctx)


__all__ = ["RUN_ID", "action_context", "run_action"]
