"""Running an action run: claim it, call ``Adapter.perform`` outside any transaction, finish it.

Whatever ``perform`` returns or raises becomes an :class:`Attempt`, which
:func:`~tovplus.services.actions.finish.finish_action_run` writes in one transaction,
conditional on still holding the run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from tovplus.errors import CredentialsRejected, DriftDetected, Forbidden, PartnerUnavailable, TovPlusError
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
from tovplus.integrations.payloads import format_timestamp
from tovplus.runtime import Runtime
from tovplus.runtime.partner_http import partner_http_client
from tovplus.services import oauth, occasions
from tovplus.services.actions.claim import ActionClaim, NotClaimed, claim_action_run
from tovplus.services.actions.finish import Attempt, FinishOutcome, finish_action_run

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What became of one execution: ``succeeded`` / ``failed`` (final), ``retrying`` (``retry_at``),
    ``skipped`` (not ours: gone, not queued, not due) or ``lost`` (taken over while it ran)."""

    run_id: str
    state: str
    retry_at: datetime | None = None
    error: str | None = None
    delivery_ids: Sequence[str] = field(default=())


def call_perform(adapter: Adapter, claim: ActionClaim, ctx: ActionContext) -> Attempt:
    """Run ``adapter.perform`` and say how it ended; never raises."""
    extra = {"action_run_id": claim.run_id, "connection_id": claim.connection_id}
    try:
        result = adapter.perform(claim.action_key, claim.input, ctx)
    except CredentialsRejected as exc:
        return Attempt("credentials", message=exc.message)
    except PartnerUnavailable as exc:
        return Attempt("transient", message=exc.message)
    except DriftDetected as exc:
        return Attempt("final", message=exc.message)
    except Forbidden as exc:
        return Attempt("final", message=exc.message)
    except TovPlusError as exc:
        return Attempt("final", message=exc.message)
    except Exception as exc:  # an adapter bug must not kill the worker; retried, then failed
        log.exception(
            "adapter %s crashed performing %s", adapter.integration_key, claim.action_key, extra=extra
        )
        return Attempt("transient", message=f"The integration failed unexpectedly ({type(exc).__name__}).")
    if not isinstance(result, ActionResult):
        return Attempt("final", message="The integration returned no action result.")
    return Attempt("success", result=result)


def execute_action_run(
    rt: Runtime, run_id: str, *, worker_id: str, http: httpx.Client | None = None
) -> ActionOutcome:
    """Claim, perform and finish one action run; dispatches the webhook deliveries it created."""
    claim = claim_action_run(rt, run_id, worker_id)
    if isinstance(claim, NotClaimed):
        return ActionOutcome(run_id, "skipped", retry_at=claim.retry_at)
    adapter = rt.registry.find(claim.integration_key)
    if claim.refusal is not None or adapter is None:
        attempt = Attempt("final", message=claim.refusal or "This integration is not installed any more.")
    else:
        attempt = _perform(rt, adapter, claim, http, worker_id)
    outcome: FinishOutcome = finish_action_run(rt, claim, attempt, worker_id=worker_id)
    log.info("action run %s %s", run_id, outcome.state, extra={"connection_id": claim.connection_id})
    for delivery_id in outcome.delivery_ids:
        rt.dispatcher.webhook_delivery(delivery_id)
    return ActionOutcome(run_id, outcome.state, outcome.retry_at, outcome.error, outcome.delivery_ids)


def _perform(
    rt: Runtime, adapter: Adapter, claim: ActionClaim, http: httpx.Client | None, worker_id: str
) -> Attempt:
    """Build the context (an OAuth2 grant may need a refresh first, which may fail) and perform."""
    try:
        ctx = context(rt, claim, http, owner=worker_id)
    except CredentialsRejected as exc:
        return Attempt("credentials", message=exc.message)
    except PartnerUnavailable as exc:
        return Attempt("transient", message=exc.message)
    return call_perform(adapter, claim, ctx)


def context(
    rt: Runtime, claim: ActionClaim, http: httpx.Client | None = None, *, owner: str = "action"
) -> ActionContext:
    """The action's context: config, secrets, the safe client, and the data its keys allow.

    For an OAuth2 adapter, ``http`` sends the connection's bearer token and ``access_token`` is
    the token valid now (refreshed under the grant's lease, by ``owner``, when it is about to expire).
    """
    client = http or partner_http_client(rt.settings)
    access_token: str | None = None
    adapter = rt.registry.find(claim.integration_key)
    if adapter is not None and adapter.oauth2 is not None:
        client, access_token = oauth.authorized_http(rt, claim.connection_id, client, owner=owner)
    return ActionContext(
        action_run_id=claim.run_id,
        connection_id=claim.connection_id,
        occasion_id=claim.occasion_id,
        attempt=claim.attempt,
        config=claim.config,
        secrets=claim.secrets,
        http=client,
        data=PlatformData(claim.action_keys, loaders(rt, claim.occasion_id)),
        now=claim.started_at,
        access_token=access_token,
    )


def loaders(rt: Runtime, occasion_id: str) -> PlatformLoaders:
    """Read the occasion's data in short read transactions, when the adapter asks for it."""

    def occasion() -> OccasionData:
        with rt.db.read() as session:
            row = occasions.occasion_row(session, occasion_id)
            return OccasionData(row.id, row.name, row.starts_on.isoformat())

    def events() -> list[EventData]:
        with rt.db.read() as session:
            return [
                EventData(e.id, e.name, format_timestamp(e.starts_at) if e.starts_at else None)
                for e in occasions.all_events(session, occasion_id)
            ]

    def guests() -> list[GuestData]:
        with rt.db.read() as session:
            return [GuestData(g.id, g.name, g.email) for g in occasions.all_guests(session, occasion_id)]

    return PlatformLoaders(occasion=occasion, events=events, guests=guests)
