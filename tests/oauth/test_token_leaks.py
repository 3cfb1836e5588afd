"""No OAuth token or client secret in any response, page, log line, activity entry or plain column."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.oauth.support import CLIENT_SECRET, FakePartner, TokenIssuer, authorized_connection, registry
from tovplus.app import create_app
from tovplus.db.models import Activity, Base
from tovplus.integrations.redaction import install_scrubber
from tovplus.runtime import Runtime, build_runtime
from tovplus.services import sync as syncs
from tovplus.settings import Settings


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = build_runtime(settings, registry=registry())
    yield runtime
    runtime.close()


def plain_columns(rt: Runtime) -> str:
    """Every text column of every row (sealed bytes left out: they are ciphertext)."""
    parts: list[str] = []
    with rt.db.read() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)).all():
                parts.extend(str(v) for v in row if not isinstance(v, bytes | memoryview))
    return "\n".join(parts)


def test_refresh_rotation_rejection_and_refusal_leak_no_token(rt, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    install_scrubber(logging.getLogger())
    partner = FakePartner(TokenIssuer(lifetime=3600))
    made = authorized_connection(rt, partner.issuer, expires_in=30)

    def sync_once() -> None:
        with rt.db.write() as session:
            run_id, _ = syncs.enqueue_run(session, made.connection_id, trigger="manual", requested_by="t")
        syncs.execute_run(rt, run_id, worker_id="w1", http=partner.client())

    sync_once()  # refreshed ahead of expiry (a rotated pair)
    partner.reject_next = 1
    sync_once()  # a 401: refreshed once more and retried
    partner.issuer.refuse_grant = True
    partner.issuer.access.clear()  # every access token now refused, so the next 401 must refresh
    sync_once()  # invalid_grant: reconnect_required
    assert len(partner.issuer.refreshes) == 2

    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        headers = {"Authorization": f"Bearer {made.owner.token}"}
        base = f"/v1/occasions/{made.occasion_id}/integrations/connections/{made.connection_id}"
        answers = [
            client.get(path, headers=headers)
            for path in (base, f"/v1/occasions/{made.occasion_id}/integrations/activity", f"{base}/sync-runs")
        ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    bodies = [a.text for a in answers]
    assert "connection.reconnect_required" in bodies[1]
    assert "press Reconnect" in bodies[2]
    with rt.db.read() as session:
        activity = [f"{a.summary} {a.details}" for a in session.scalars(select(Activity))]

    values = [*partner.issuer.used_refresh, *partner.issuer.live_refresh, CLIENT_SECRET]
    values += [t for t in partner.api_calls if t]
    assert len(values) >= 6
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "reconnect_required" in plain_columns(rt)
    for value in values:
        assert value not in logs
        assert all(value not in body for body in bodies)
        assert all(value not in entry for entry in activity)
        assert value not in plain_columns(rt)
