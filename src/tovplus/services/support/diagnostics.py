"""The diagnostics download of one connection: everything a support engineer needs, nothing secret.

The adapter (key, package version, contract version), the connection as the API shows it, its
last 20 sync runs and action runs, its last 50 activity entries, its webhook deliveries of the
last day and the settings that shape it. Rows are dumped column by column (so columns other
work adds appear without a change here), minus lease bookkeeping; the whole document then goes
through the redaction module once more, so a secret that slipped into an error text is masked.
"""

from __future__ import annotations

import importlib.metadata
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from tovplus import __version__
from tovplus.db.models import Base, Connection, SyncRun, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tovplus.db.sql import one_of
from tovplus.db.types import utcnow
from tovplus.integrations.contract import Adapter
from tovplus.integrations.payloads import format_timestamp
from tovplus.integrations.redaction import redact_details, scrubber
from tovplus.runtime import Runtime
from tovplus.services import activity, connections, sync
from tovplus.services.auth import MANAGE, Caller, authorize

SYNC_RUNS = 20
ACTION_RUNS = 20
ACTIVITY_ENTRIES = 50
DELIVERIES_SINCE = timedelta(days=1)
#: Columns that say nothing useful to support and could hold material that must not leave.
_LEFT_OUT = frozenset({"lease_owner", "payload", "traceparent", "secret_hash"})


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return None
    return value


def _rows(session: Session, table: Table, connection_id: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` rows of ``table`` for the connection, every column but :data:`_LEFT_OUT`."""
    query = (
        select(table).where(table.c.connection_id == connection_id).order_by(table.c.id.desc()).limit(limit)
    )
    return [
        {k: _plain(v) for k, v in row._mapping.items() if k not in _LEFT_OUT}
        for row in session.execute(query)
    ]


def _package_version(adapter: Adapter) -> str:
    top = type(adapter).__module__.split(".")[0]
    for dist in importlib.metadata.packages_distributions().get(top, []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return __version__


def _adapter_part(rt: Runtime, integration_key: str) -> dict[str, Any]:
    adapter = rt.registry.find(integration_key)
    if adapter is None:
        return {"integration_key": integration_key, "installed": False}
    return {
        "integration_key": integration_key,
        "installed": True,
        "name": adapter.name,
        "package_version": _package_version(adapter),
        "contract_version": adapter.contract_version,
        "platform_version": __version__,
    }


def _deliveries(session: Session, occasion_id: str, connection_id: str) -> list[dict[str, Any]]:
    """The occasion's webhook deliveries of the last day about this connection, with their attempts."""
    since = utcnow() - DELIVERIES_SINCE
    rows = session.execute(
        select(WebhookDelivery, WebhookEndpoint.url)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookEndpoint.occasion_id == occasion_id, WebhookDelivery.created_at >= since)
        .order_by(WebhookDelivery.id.desc())
        .limit(500)
    ).all()
    mine = [
        (d, url)
        for d, url in rows
        if ((d.payload or {}).get("data") or {}).get("connection_id") == connection_id
    ]
    attempts: dict[str, list[dict[str, Any]]] = {d.id: [] for d, _ in mine}
    if attempts:
        for a in session.scalars(
            select(WebhookAttempt)
            .where(one_of(WebhookAttempt.delivery_id.expression, list(attempts)))
            .order_by(WebhookAttempt.id)
        ):
            attempts[a.delivery_id].append(
                {
                    "at": _plain(a.attempted_at),
                    "status_code": a.status_code,
                    "duration_ms": a.duration_ms,
                    "error": a.error,
                }
            )
    return [
        {
            "webhook_id": d.id,
            "endpoint_id": d.endpoint_id,
            "endpoint_url": url,
            "event_type": d.event_type,
            "state": d.state,
            "created_at": _plain(d.created_at),
            "delivered_at": _plain(d.delivered_at),
            "attempts": attempts[d.id],
        }
        for d, url in mine
    ]


def _settings_part(rt: Runtime, integration_key: str, override: int | None) -> dict[str, Any]:
    s = rt.settings
    adapter = rt.registry.find(integration_key)
    interval = sync.sync_interval(s, adapter, override).total_seconds() if adapter is not None else None
    return {
        "sync_retry_delays": list(s.sync_retry_delays),
        "sync_interval_seconds": interval,
        "sync_interval_override_seconds": override,
        "webhook_retry_delays": list(s.webhook_retry_delays),
        "lease_seconds": s.lease_seconds,
    }


def connection_diagnostics(
    rt: Runtime, caller: Caller, occasion_id: str, connection_id: str
) -> dict[str, Any]:
    """The diagnostics document of one connection (planners of its occasion, admins)."""
    view = connections.get_connection(rt, caller, occasion_id, connection_id)
    with rt.db.read() as session:
        authorize(session, caller, MANAGE, occasion_id)
        override = session.scalar(
            select(Connection.sync_interval_seconds).where(Connection.id == connection_id)
        )
        action_runs = Base.metadata.tables.get("action_runs")
        entries = activity.list_activity(session, connection_id=connection_id, limit=ACTIVITY_ENTRIES)
        document = {
            "generated_at": format_timestamp(utcnow()),
            "adapter": _adapter_part(rt, view.integration_key),
            "connection": view.model_dump(mode="json"),
            "sync_runs": _rows(session, SyncRun.__table__, connection_id, SYNC_RUNS),  # type: ignore[arg-type]
            "action_runs": _rows(session, action_runs, connection_id, ACTION_RUNS)
            if action_runs is not None
            else [],
            "activity": [activity.activity_view(a).model_dump(mode="json") for a in entries.items],
            "webhook_deliveries": _deliveries(session, occasion_id, connection_id),
            "settings": _settings_part(rt, view.integration_key, override),
        }
    scrubbed: dict[str, Any] = _scrubbed(redact_details(document))
    return scrubbed


def _scrubbed(value: Any) -> Any:
    """Every string through the log scrubber too (secret values this process has seen are masked)."""
    if isinstance(value, str):
        return scrubber.scrub(value)
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    return value
