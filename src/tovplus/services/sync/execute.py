"""Running a run: claim it, call the adapter's ``sync`` outside any transaction, finish it.

The adapter gets the decrypted secrets and an HTTP client that refuses non-public addresses;
whatever it returns or raises becomes a :class:`~tovplus.services.sync.outcome.Verdict`, which
:func:`~tovplus.services.sync.finish.finish_run` writes in one transaction.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from tovplus.db.models import SyncRun
from tovplus.errors import CredentialsRejected, DriftDetected, Forbidden, PartnerUnavailable, TovPlusError
from tovplus.integrations.contract import Adapter, SyncContext, SyncResult
from tovplus.integrations.sync_state import RunSuperseded
from tovplus.runtime import Runtime, metrics, tracing
from tovplus.runtime.partner_http import partner_http_client
from tovplus.services import oauth
from tovplus.services.records import record_problems
from tovplus.services.sync.changes import RunCheckpoints, resume_point, with_final_state
from tovplus.services.sync.finish import finish_run
from tovplus.services.sync.lease import Claim, LeaseKeeper, claim_run
from tovplus.services.sync.outcome import OutcomeState, RunOutcome, Verdict

log = logging.getLogger(__name__)


def call_adapter(adapter: Adapter, ctx: SyncContext, extra: dict[str, Any]) -> Verdict:
    """Run ``adapter.sync(ctx)`` and say how it ended; never raises (``extra`` goes to the logs)."""
    try:
        result = adapter.sync(ctx)
    except CredentialsRejected as exc:
        return Verdict("credentials", message=exc.message)
    except DriftDetected as exc:
        return Verdict("drift", message=exc.message, reasons=exc.reasons or (exc.message,))
    except PartnerUnavailable as exc:
        return Verdict("transient", message=exc.message, retry_after=exc.retry_after)
    except Forbidden as exc:
        return Verdict("forbidden", message=f"The partner's address is not allowed: {exc.message}")
    except TovPlusError as exc:
        return Verdict("transient", message=exc.message)
    except RunSuperseded as exc:
        return Verdict("transient", message=str(exc))
    except Exception:  # an adapter bug must not kill the worker; retried, then failing
        log.exception("adapter %s crashed during sync", adapter.integration_key, extra=extra)
        return Verdict("transient", message="The integration failed unexpectedly (see the worker's log).")
    if not isinstance(result, SyncResult):
        return Verdict("transient", message="The integration returned no sync result.")
    problems = record_problems(list(result.records))
    if problems:
        log.error(
            "adapter %s returned unstorable records: %s", adapter.integration_key, problems, extra=extra
        )
        return Verdict("transient", message="The integration returned records that cannot be stored.")
    return Verdict("success", result=result)


def execute_run(
    rt: Runtime,
    run_id: str,
    *,
    worker_id: str,
    keeper: LeaseKeeper | None = None,
    http: httpx.Client | None = None,
) -> RunOutcome:
    """Claim, run and finish one sync run; dispatches the webhook deliveries it created.

    Returns the outcome; a ``retrying`` outcome carries ``retry_at`` for the caller to
    schedule (the reaper would find it anyway). Traced as ``sync.run`` (``sync.claim``,
    ``sync.adapter``, ``sync.finish`` inside), continuing the trace that queued the run.
    """
    with tracing.row_span("sync.run", rt.db, SyncRun, run_id, run_id=run_id):
        return _execute(rt, run_id, worker_id=worker_id, keeper=keeper, http=http)


def _execute(
    rt: Runtime, run_id: str, *, worker_id: str, keeper: LeaseKeeper | None, http: httpx.Client | None
) -> RunOutcome:
    with tracing.span("sync.claim", run_id=run_id):
        claim = claim_run(rt, run_id, worker_id)
    if isinstance(claim, RunOutcome):
        return claim
    extra = {"run_id": run_id, "connection_id": claim.connection_id}
    if claim.unreadable is not None:  # nothing to call the adapter with; retrying cannot help
        verdict = Verdict("unreadable", message=claim.unreadable)
    else:
        with tracing.span("sync.adapter", integration_key=claim.integration_key, **extra):
            verdict = run_adapter(rt, claim, worker_id, keeper=keeper, http=http, extra=extra)
    with tracing.span("sync.finish", run_id=run_id, verdict=verdict.kind):
        outcome = finish_run(rt, claim, verdict, worker_id=worker_id)
    report_outcome(rt, outcome, extra)
    return outcome


def report_outcome(rt: Runtime, outcome: RunOutcome, extra: dict[str, Any]) -> None:
    """After the finish committed: count it, log it, dispatch the webhook deliveries it created."""
    metrics.SYNC_RUNS.labels(outcome.state).inc()
    if outcome.state == OutcomeState.LOST:
        log.warning(
            "sync run %s was taken over while it ran; its result was discarded", outcome.run_id, extra=extra
        )
    else:
        log.info("sync run %s %s", outcome.run_id, outcome.state, extra=extra)
    for delivery_id in outcome.delivery_ids:
        rt.dispatcher.webhook_delivery(delivery_id)


def run_adapter(
    rt: Runtime,
    claim: Claim,
    worker_id: str,
    *,
    keeper: LeaseKeeper | None,
    http: httpx.Client | None,
    extra: dict[str, Any],
) -> Verdict:
    """Call the adapter with the claim's lease renewed meanwhile (an OAuth2 refresh before it
    included); the call's duration is measured."""
    adapter = rt.registry.get(claim.integration_key)
    if keeper is not None:
        keeper.track(claim.run_id)
    started = time.perf_counter()
    try:
        try:
            ctx = _context(rt, claim, worker_id, http)
        except CredentialsRejected as exc:  # an OAuth2 grant that is gone or cannot refresh
            return Verdict("credentials", message=exc.message)
        except PartnerUnavailable as exc:  # the partner's token endpoint is down: the normal retry
            return Verdict("transient", message=exc.message, retry_after=exc.retry_after)
        return with_final_state(call_adapter(adapter, ctx, extra), ctx.state)
    finally:
        if keeper is not None:
            keeper.untrack(claim.run_id)
        metrics.SYNC_DURATION.observe(time.perf_counter() - started)


def _context(rt: Runtime, claim: Claim, worker_id: str, http: httpx.Client | None) -> SyncContext:
    """The adapter's context: a full run starts from nothing, a resumed one from its checkpoint.

    An OAuth2 adapter's ``http`` sends the connection's bearer token (refreshed first when it is
    about to expire, and once after a 401), and ``access_token`` is the token valid now.
    """
    adapter = rt.registry.get(claim.integration_key)
    client = http or partner_http_client(rt.settings, claim.integration_key, adapter.partner_limits)
    access_token: str | None = None
    if adapter.oauth2 is not None:
        client, access_token = oauth.authorized_http(rt, claim.connection_id, client, owner=worker_id)
    point = resume_point(rt, claim)
    return SyncContext(
        connection_id=claim.connection_id,
        occasion_id=claim.occasion_id,
        config=claim.config,
        secrets=claim.secrets,
        http=client,
        last_success_at=None if point.full else claim.last_success_at,
        now=claim.started_at,
        state=point.state,
        full=point.full,
        checkpointer=RunCheckpoints(rt, claim, worker_id, point),
        access_token=access_token,
    )
