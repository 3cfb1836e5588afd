"""``POST …/connections/{id}/check``: ask the partner whether the stored credentials work.

Three steps, so no transaction is open while the partner is called:

1. a short read: authorization (planners of the occasion, admins), the row, and its secrets
   (or, for an OAuth2 adapter, whether it has a grant at all);
2. ``adapter.check(ctx)`` with the partner HTTP client (for OAuth2, ``oauth.authorized_http``);
3. one write: a ``connection.checked`` activity entry and the connection's health.

Health is the stored verdict (``sync_health``, which ``health`` is built from), and the reasons a
check adds start with :data:`CHECK_REASON_PREFIX`, so a later check can tell its own verdict apart:

* rejected credentials → ``failing``; drift → ``degraded`` (a sync's ``failing`` stays ``failing``);
* a passing check takes the check's own reasons away (the verdict becomes ``healthy`` when nothing
  else is left) and resumes a schedule paused after failures in a row;
* a partner that could not answer, a refused address, a crashing adapter, a missing or refused
  OAuth2 grant (the refresh records that itself): ``ok: false``, health unchanged;
* when the settings or secrets changed while the partner was asked, the entry is recorded and
  health is left alone: the check judged values that are no longer stored.

Nothing else from the check is stored; no secret or token reaches the outcome or the activity.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tovplus.db.ids import new_id
from tovplus.db.models import Connection, ConnectionSecret, OAuthGrant
from tovplus.db.states import ConnectionState
from tovplus.db.types import utcnow
from tovplus.errors import (
    CheckNotSupported,
    ConnectionRevoked,
    CredentialsRejected,
    DriftDetected,
    Forbidden,
    TovPlusError,
)
from tovplus.integrations.auth import AuthorizationStatus
from tovplus.integrations.contract import Adapter, CheckContext, CheckResult, Health
from tovplus.integrations.payloads import format_timestamp
from tovplus.integrations.redaction import scrubber
from tovplus.runtime import Runtime
from tovplus.runtime.partner_http import partner_http_client
from tovplus.runtime.views import View
from tovplus.services import activity, credentials, oauth
from tovplus.services import sync as syncs
from tovplus.services.auth import MANAGE, Caller, authorize
from tovplus.services.connections import store
from tovplus.services.health import (
    RECHECK_REASON,
    authorization_of,
    effective_health,
    health_changed,
    validation_of,
)

log = logging.getLogger(__name__)

#: Every health reason a check adds starts with this (a passing check takes them away again).
CHECK_REASON_PREFIX = "Connection test: "
CRASHED_PROBLEM = "The integration's check failed unexpectedly."
CHECKED_KIND = "connection.checked"


class CheckOutcome(View):
    """The contract's ``check`` object: whether the partner accepted the credentials, and why not."""

    ok: bool
    checked_at: str
    problems: list[str]
    #: What the partner said when it accepted them (e.g. the account it signs in to); "" otherwise.
    summary: str = ""


@dataclass(frozen=True, slots=True)
class _Verdict:
    """How the check ended: ``passed``, ``rejected``, ``drift`` or ``unknown`` (the partner could not say)."""

    kind: str
    problems: Sequence[str] = ()
    summary: str = ""


@dataclass(slots=True)
class _Read:
    """What step 1 read: the row's identity and a fingerprint of the values the check judges."""

    adapter: Adapter
    occasion_id: str
    integration_key: str
    config: dict[str, Any]
    secrets: dict[str, str] = field(repr=False)
    fingerprint: tuple[Any, ...]
    #: Set for an OAuth2 connection that cannot be checked yet (no grant, or reconnect needed).
    not_ready: str | None = None


def check_connection(rt: Runtime, caller: Caller, occasion_id: str, connection_id: str) -> CheckOutcome:
    """Run the adapter's credential check against the partner, record it, update health.

    404 for connections the caller may not manage; 409 ``connection_revoked`` for a revoked one and
    ``check_not_supported`` for an adapter without a check. Drafts may be checked.
    """
    read = _read(rt, caller, occasion_id, connection_id)
    verdict = _Verdict("unknown", (read.not_ready,)) if read.not_ready else _run(rt, read, connection_id)
    checked_at = utcnow()
    problems = [scrubber.scrub(p)[: syncs.MAX_ERROR_CHARS] for p in verdict.problems]
    deliveries = store.retrying(
        lambda: _record(rt, caller, connection_id, read, verdict, problems, checked_at)
    )
    for delivery_id in deliveries:
        rt.dispatcher.webhook_delivery(delivery_id)
    ok = verdict.kind == "passed"
    return CheckOutcome(
        ok=ok,
        checked_at=format_timestamp(checked_at),
        problems=problems,
        summary=scrubber.scrub(verdict.summary) if ok else "",
    )


# --- 1. the read ------------------------------------------------------------------------------------


def _read(rt: Runtime, caller: Caller, occasion_id: str, connection_id: str) -> _Read:
    with rt.db.read() as session:
        authorize(session, caller, MANAGE, occasion_id)
        row = store.load_connection(session, occasion_id, connection_id)
        if row.state == ConnectionState.REVOKED:
            raise ConnectionRevoked("This connection is revoked; there is nothing left to test.")
        adapter = rt.registry.find(row.integration_key)
        if adapter is None or not adapter.supports_credential_check:
            raise CheckNotSupported("This integration cannot test its connection.")
        read = _Read(
            adapter,
            row.occasion_id,
            row.integration_key,
            dict(row.config),
            {},
            _fingerprint(session, row),
        )
        if adapter.oauth2 is not None:
            read.not_ready = _grant_problem(session, adapter, row.id)
        else:
            read.secrets = credentials.decrypt_connection_secrets(session, rt.keyring, row.id)
        return read


def _fingerprint(session: Session, row: Connection) -> tuple[Any, ...]:
    """The config and each secret's nonce (new with every write): a change means the check judged
    values that are no longer stored."""
    nonces = session.execute(
        select(ConnectionSecret.field_key, ConnectionSecret.nonce)
        .where(ConnectionSecret.connection_id == row.id)
        .order_by(ConnectionSecret.field_key)
    ).all()
    return (sorted(row.config.items()), [(k, bytes(n)) for k, n in nonces])


def _grant_problem(session: Session, adapter: Adapter, connection_id: str) -> str | None:
    """Why an OAuth2 connection cannot be checked yet, in words (``None``: it has a grant)."""
    status = oauth.grant_status(session.get(OAuthGrant, connection_id))
    if status is AuthorizationStatus.AUTHORIZED:
        return None
    if status is AuthorizationStatus.RECONNECT_REQUIRED:
        return f"{adapter.name} no longer accepts this connection's access: reconnect it."
    return f"Not connected yet: connect with {adapter.name} first."


# --- 2. the partner -----------------------------------------------------------------------------------


def _run(rt: Runtime, read: _Read, connection_id: str) -> _Verdict:
    """Call the adapter's check (never raises: every ending becomes a verdict)."""
    adapter = read.adapter
    base = partner_http_client(rt.settings, adapter.integration_key, adapter.partner_limits)
    extra = {"connection_id": connection_id, "integration_key": adapter.integration_key}
    token: str | None = None
    if adapter.oauth2 is not None:
        try:
            base, token = oauth.authorized_http(rt, connection_id, base, owner=new_id("chk"))
        except TovPlusError as exc:  # refused grant (recorded by the refresh) or unreachable partner
            return _Verdict("unknown", (exc.message,))
        scrubber.remember(token)
    ctx = CheckContext(
        connection_id=connection_id,
        occasion_id=read.occasion_id,
        config=read.config,
        secrets=read.secrets,
        http=base,
        now=utcnow(),
        access_token=token,
    )
    return _call(adapter, ctx, extra)


def _call(adapter: Adapter, ctx: CheckContext, extra: dict[str, str]) -> _Verdict:
    try:
        result = adapter.check(ctx)
    except CredentialsRejected as exc:
        return _Verdict("rejected", (exc.message,))
    except DriftDetected as exc:
        return _Verdict("drift", exc.reasons or (exc.message,))
    except Forbidden as exc:
        return _Verdict("unknown", (f"The partner's address is not allowed: {exc.message}",))
    except TovPlusError as exc:  # PartnerUnavailable and the like: the partner could not say
        return _Verdict("unknown", (exc.message,))
    except Exception:  # an adapter bug must never become a 500
        log.exception("adapter %s crashed during its credential check", adapter.integration_key, extra=extra)
        return _Verdict("unknown", (CRASHED_PROBLEM,))
    if not isinstance(result, CheckResult):
        log.error("adapter %s returned no CheckResult from check", adapter.integration_key, extra=extra)
        return _Verdict("unknown", (CRASHED_PROBLEM,))
    if result.drift:
        return _Verdict("drift", [str(d) for d in result.drift], result.summary)
    return _Verdict("passed", (), result.summary)


# --- 3. the write ---------------------------------------------------------------------------------------


def _record(
    rt: Runtime,
    caller: Caller,
    connection_id: str,
    read: _Read,
    verdict: _Verdict,
    problems: list[str],
    checked_at: datetime,
) -> list[str]:
    """The activity entry and the health the verdict leaves; the webhook deliveries to dispatch."""
    with rt.db.write() as session:
        row = session.get(Connection, connection_id)
        if row is None:  # deleted with its occasion meanwhile: nothing to record on
            return []
        current = row.state != ConnectionState.REVOKED and _fingerprint(session, row) == read.fingerprint
        moved = _new_verdict(row, verdict, problems) if current else None
        previous, shown = row.health, row.health
        deliveries: list[str] = []
        if moved is not None:
            shown, deliveries = _write_health(rt, session, row, read.adapter, moved)
        if current and verdict.kind == "passed":
            syncs.resume_schedule(session, row.id)
        activity.record(
            session,
            kind=CHECKED_KIND,
            actor=caller.subject_id,
            summary=_summary(verdict, problems),
            occasion_id=read.occasion_id,
            connection_id=connection_id,
            integration_key=read.integration_key,
            details={
                "ok": verdict.kind == "passed",
                "outcome": verdict.kind,
                "problems": problems,
                "checked_at": format_timestamp(checked_at),
                "health": shown,
                "previous_health": previous,
                "judged_current_settings": current,
            },
        )
        return deliveries


def _summary(verdict: _Verdict, problems: list[str]) -> str:
    if verdict.kind == "passed":
        said = scrubber.scrub(verdict.summary) if verdict.summary else "the partner accepted the credentials"
        return f"Connection test passed: {said}"
    return f"Connection test failed: {'; '.join(problems) or 'no reason given'}"


@dataclass(frozen=True, slots=True)
class _Moved:
    """The stored verdict a check leaves (``sync_health`` and its reasons)."""

    sync_health: str
    sync_reasons: list[str]


def _new_verdict(row: Connection, verdict: _Verdict, problems: list[str]) -> _Moved | None:
    """The stored verdict after the check, or ``None`` when the check changes nothing."""
    reasons = [str(r) for r in row.sync_health_reasons]
    kept = [r for r in reasons if not r.startswith(CHECK_REASON_PREFIX)]
    own = [CHECK_REASON_PREFIX + p for p in problems]
    current = Health(row.sync_health)
    ours_only = not [r for r in kept if r != RECHECK_REASON]
    if verdict.kind == "rejected":
        return _Moved(Health.FAILING.value, own + kept)
    if verdict.kind == "drift":
        worse = current is Health.FAILING and not ours_only
        return _Moved((Health.FAILING if worse else Health.DEGRADED).value, own + kept)
    if verdict.kind == "passed" and len(kept) < len(reasons):
        if ours_only:
            return _Moved(Health.HEALTHY.value, [])
        return _Moved(current.value, kept)
    return None


def _write_health(
    rt: Runtime, session: Session, row: Connection, adapter: Adapter, moved: _Moved
) -> tuple[str, list[str]]:
    """Store the verdict and the health shown from it (announced if it moved); ``(shown, deliveries)``."""
    present = frozenset(store.secrets_present(session, row.id))
    validation = validation_of(rt, adapter, row, present, authorization_of(session, adapter, row.id))
    shown, reasons = effective_health(row.state, validation, moved.sync_health, moved.sync_reasons)
    deliveries = health_changed(session, row, previous=row.health, health=shown, reasons=reasons)
    store.conditional_update(
        session,
        row,
        {
            "sync_health": moved.sync_health,
            "sync_health_reasons": moved.sync_reasons,
            "health": shown,
            "health_reasons": reasons,
        },
    )
    return shown, deliveries
