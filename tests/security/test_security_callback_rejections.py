"""Issue 13, finding 10: refused callbacks are counted, every one, and none goes unlogged for long.

``callback.rejected`` entries stay rate-limited (a burst of 3, then 2 a minute per connection),
but every 401 is counted per connection and reason in the database (shown on the connection,
API and page), and rejections held back by the rate are written as one coalesced entry at the
latest a minute after the first of them, even when no further rejection comes.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from tests.conftest import Api, assert_error
from tests.support.web import WebUser, occasion, person
from tovplus.db.models import Activity
from tovplus.db.types import utcnow
from tovplus.errors import Unauthenticated
from tovplus.runtime import Runtime, build_runtime
from tovplus.services import connections
from tovplus.services.callbacks import CallbackService, InboundCallback
from tovplus.services.connections import ConnectionCreate
from tovplus.settings import Settings

WRONG = "tov_ikdeadbeef_wrong"
ORDER = b'{"event": "order.status_changed", "order_id": "o", "status": "s", "occurred_at": null}'


def connect(api: Api) -> tuple[str, str, str]:
    token = api.user()
    occasion_id = api.occasion(token)
    r = api.connect(token, occasion_id, state="enabled")
    assert r.status_code == 201, r.text
    return token, occasion_id, r.json()["connection"]["id"]


def refuse(api: Api, connection_id: str, times: int, secret: str | None = WRONG) -> None:
    headers = {"x-tov-integration-secret": secret} if secret is not None else {}
    for _ in range(times):
        r = api.client.post(
            f"/v1/integrations/callbacks/printing_partner/{connection_id}", content=ORDER, headers=headers
        )
        assert_error(r, 401, "unauthenticated")


def view(api: Api, token: str, occasion_id: str, connection_id: str) -> dict[str, Any]:
    r = api.client.get(
        f"/v1/occasions/{occasion_id}/integrations/connections/{connection_id}", headers=api.auth(token)
    )
    assert r.status_code == 200, r.text
    return dict(r.json()["connection"])


def entries(rt: Runtime, connection_id: str) -> list[dict[str, Any]]:
    with rt.db.read() as s:
        rows = s.scalars(
            select(Activity)
            .where(Activity.kind == "callback.rejected", Activity.connection_id == connection_id)
            .order_by(Activity.id)
        ).all()
        return [dict(a.details) | {"summary": a.summary} for a in rows]


def own_service(api: Api, **log_options: Any) -> CallbackService:
    """Put a callback service of the test's making on the app (the route would make one)."""
    service = CallbackService(api.runtime)
    if log_options:
        from tovplus.services.callbacks.rejection_log import RejectionLog

        service.rejection_log = RejectionLog(api.runtime.db, **log_options)
    api.client.app.state.callback_service = service  # type: ignore[attr-defined]
    return service


def test_every_rejection_is_counted_by_reason_on_the_connection(api: Api) -> None:
    token, occasion_id, conn_id = connect(api)
    refuse(api, conn_id, 25)
    refuse(api, conn_id, 4, secret=None)
    assert len(entries(api.runtime, conn_id)) <= 3  # the bound on entries holds
    rejections = view(api, token, occasion_id, conn_id)["callback_rejections"]
    assert rejections["window_seconds"] == 3600
    assert rejections["total"] == 29
    assert rejections["by_reason"] == {"missing_secret": 4, "wrong_secret": 25}
    assert rejections["last_rejected_at"] is not None
    # the occasion's list shows the same counts
    r = api.client.get(f"/v1/occasions/{occasion_id}/integrations", headers=api.auth(token))
    [listed] = [c for c in r.json()["connections"] if c["id"] == conn_id]
    assert listed["callback_rejections"] == rejections


def test_a_connection_without_rejections_shows_zero(api: Api) -> None:
    token, occasion_id, conn_id = connect(api)
    assert view(api, token, occasion_id, conn_id)["callback_rejections"] == {
        "window_seconds": 3600,
        "total": 0,
        "by_reason": {},
        "last_rejected_at": None,
    }


def test_counts_from_several_processes_add_up(api: Api, settings: Settings) -> None:
    token, occasion_id, conn_id = connect(api)
    other = build_runtime(settings)  # a second process on the same database
    services = [CallbackService(api.runtime), CallbackService(other)]
    try:
        for i in range(12):
            job = InboundCallback("printing_partner", conn_id, ORDER, {}, secret=WRONG)
            with pytest.raises(Unauthenticated):
                services[i % 2].receive_wait(job)
    finally:
        for service in services:
            service.close()
        other.close()
    rejections = view(api, token, occasion_id, conn_id)["callback_rejections"]
    assert rejections["by_reason"] == {"wrong_secret": 12}


def test_held_rejections_are_written_within_the_delay_without_a_further_rejection(api: Api) -> None:
    _, _, conn_id = connect(api)
    own_service(api, within=0.5)  # the default is COALESCE_WITHIN_SECONDS, a minute
    started = time.monotonic()
    refuse(api, conn_id, 10)
    assert len(entries(api.runtime, conn_id)) == 3  # the burst
    deadline = started + 10
    while len(entries(api.runtime, conn_id)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    written = entries(api.runtime, conn_id)
    assert len(written) == 4, written
    last = written[-1]
    assert last["coalesced"] is True
    assert last["suppressed_since_last_entry"] == 7
    assert last["suppressed_reasons"] == {"wrong_secret": 7}
    assert last["reason"] == "wrong_secret"
    assert "7 more callbacks" in last["summary"]


def test_held_rejections_are_written_as_soon_as_the_rate_allows(api: Api) -> None:
    _, _, conn_id = connect(api)
    own_service(api, burst=1, per_minute=120)  # a token every 0.5 s: the minute never comes into it
    refuse(api, conn_id, 5)
    deadline = time.monotonic() + 5
    while told(entries(api.runtime, conn_id)) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    written = entries(api.runtime, conn_id)
    assert told(written) == 5, written
    assert any(e.get("coalesced") for e in written)


def told(written: list[dict[str, Any]]) -> int:
    """How many rejections the entries account for: each plain entry itself, and what each held back."""
    return sum(0 if e.get("coalesced") else 1 for e in written) + sum(
        e["suppressed_since_last_entry"] for e in written
    )


def test_every_rejection_is_in_the_log_once_the_service_stops(api: Api) -> None:
    """Stopping writes what is held, so the entries account for each rejection."""
    _, _, conn_id = connect(api)
    service = own_service(api)
    refuse(api, conn_id, 25)
    service.close()
    written = entries(api.runtime, conn_id)
    assert len(written) == 4
    assert written[-1].get("coalesced") is True
    assert told(written) == 25, written


def test_counts_older_than_an_hour_are_left_out_and_pruned(api: Api) -> None:
    from tovplus.db.models import CallbackRejection

    token, occasion_id, conn_id = connect(api)
    long_ago = (utcnow() - timedelta(hours=2)).replace(second=0, microsecond=0)
    with api.runtime.db.write() as s:
        s.execute(
            insert(CallbackRejection).values(
                connection_id=conn_id, minute=long_ago, reason="wrong_secret", count=100, last_at=long_ago
            )
        )
    assert view(api, token, occasion_id, conn_id)["callback_rejections"]["total"] == 0
    refuse(api, conn_id, 2)
    rejections = view(api, token, occasion_id, conn_id)["callback_rejections"]
    assert rejections["by_reason"] == {"wrong_secret": 2}
    with api.runtime.db.read() as s:
        rows = s.scalar(select(func.count()).select_from(CallbackRejection))
    assert rows == 1  # the hour-old row went with the next rejection


def test_the_connection_page_shows_refused_callbacks(api: Api) -> None:
    rt = api.runtime
    planner = person(rt)
    occasion_id = occasion(rt, planner)
    result = connections.create_connection(
        rt,
        planner.caller,
        occasion_id,
        ConnectionCreate(
            "printing_partner",
            config={"account_id": "acct-123", "api_base_url": "https://printer.example.com/api"},
            secrets={"api_key": "pk_live_ABCDEFGHIJKLMNOP"},
            state="enabled",
        ),
    )
    conn_id = result.connection["id"]
    page = WebUser(api.client, planner).get(f"/occasions/{occasion_id}/integrations/connections/{conn_id}")
    assert "No callback was refused in the last hour." in page.text
    refuse(api, conn_id, 6)
    refuse(api, conn_id, 1, secret=None)
    page = WebUser(api.client, planner).get(f"/occasions/{occasion_id}/integrations/connections/{conn_id}")
    assert page.status_code == 200
    assert "Refused callbacks" in page.text
    assert "<dt>Last hour</dt><dd>7</dd>" in page.text
    assert "<dt><code>wrong_secret</code></dt><dd>6</dd>" in page.text
    assert "<dt><code>missing_secret</code></dt><dd>1</dd>" in page.text
