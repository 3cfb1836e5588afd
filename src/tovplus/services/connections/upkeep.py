"""Keeping stored health true when the rules change (an adapter upgrade adds a required field)."""

from __future__ import annotations

from sqlalchemy import select, update

from tovplus.db.models import Connection
from tovplus.db.states import ConnectionState
from tovplus.runtime import Runtime
from tovplus.services import credentials
from tovplus.services.health import authorizations, effective_health, validation_of, with_suspension


def refresh_health(rt: Runtime, *, batch_size: int = 500) -> int:
    """Recompute stored health of enabled connections (after an adapter upgrade). Returns changes.

    Each write is conditional on the version that was read, so a concurrent edit (which
    computes health itself) is never overwritten with a stale verdict. A suspended connection
    keeps its suspension (``degraded`` with the admin's reason first) until it is resumed.
    """
    changed = 0
    after = ""
    while True:
        with rt.db.write() as session:
            rows = session.scalars(
                select(Connection)
                .where(Connection.state == ConnectionState.ENABLED.value, Connection.id > after)
                .order_by(Connection.id)
                .limit(batch_size)
            ).all()
            if not rows:
                return changed
            redacted = credentials.redacted_secrets(session, [r.id for r in rows])
            grants = authorizations(session, {r.id: rt.registry.find(r.integration_key) for r in rows})
            for row in rows:
                adapter = rt.registry.find(row.integration_key)
                validation = (
                    validation_of(rt, adapter, row, frozenset(redacted[row.id]), grants[row.id])
                    if adapter
                    else None
                )
                health, reasons = with_suspension(
                    row, *effective_health(row.state, validation, row.sync_health, row.sync_health_reasons)
                )
                if health != row.health or reasons != row.health_reasons:
                    result = session.execute(
                        update(Connection)
                        .where(Connection.id == row.id, Connection.version == row.version)
                        .values(health=health, health_reasons=reasons)
                        .execution_options(synchronize_session=False)
                    )
                    changed += result.rowcount  # type: ignore[attr-defined]
            after = rows[-1].id
