"""Helpers of the action tests: a connection to a live simulator, guest lists it received, runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import select

from tests.support.sync import Made, Sim, make_connection, simulator
from tovplus.db.models import ActionRun
from tovplus.runtime import Runtime
from tovplus.services import actions


def base(made: Made) -> str:
    return f"/v1/occasions/{made.occasion_id}/integrations/connections/{made.connection_id}"


def auth(made: Made) -> dict[str, str]:
    return {"Authorization": f"Bearer {made.token}"}


def received(sim: Sim) -> dict[str, Any]:
    """What the simulator's guest-list endpoint received (its debug route)."""
    return dict(httpx.get(f"{sim.url}/_control/guest-lists", timeout=5).json())


def guest_list_fault(sim: Sim, mode: str, **body: Any) -> None:
    r = httpx.post(f"{sim.url}/_control/guest-lists", json={"mode": mode, **body}, timeout=5)
    assert r.status_code == 200, r.text


def action_runs(rt: Runtime, connection_id: str) -> list[ActionRun]:
    with rt.db.read() as session:
        return list(
            session.scalars(
                select(ActionRun).where(ActionRun.connection_id == connection_id).order_by(ActionRun.id)
            )
        )


def run_all(rt: Runtime, worker_id: str = "test-worker") -> list[actions.ActionOutcome]:
    """Execute every due queued action run once, oldest first."""
    outcomes = []
    with rt.db.read() as session:
        ids = list(
            session.scalars(select(ActionRun.id).where(ActionRun.state == "queued").order_by(ActionRun.id))
        )
    for run_id in ids:
        outcomes.append(actions.execute_action_run(rt, run_id, worker_id=worker_id))
    return outcomes


@contextmanager
def connected(rt: Runtime, **kwargs: Any) -> Iterator[tuple[Sim, Made]]:
    """A simulator and an enabled printing_partner connection to it."""
    with simulator() as sim:
        yield sim, make_connection(rt, sim.url, **kwargs)
