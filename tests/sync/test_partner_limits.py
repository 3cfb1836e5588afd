"""An adapter's declared partner limits hold across every connection and thread of one process."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import pytest

from tests.support.sync import Sim, make_connection, simulator, tuned
from tovplus.integrations import PartnerLimits, SyncContext, SyncResult
from tovplus.integrations.adapters.printing_partner import PrintingPartnerAdapter
from tovplus.integrations.adapters.venue_ops import VenueOpsAdapter
from tovplus.integrations.politeness import PartnerGate
from tovplus.integrations.registry import AdapterRegistry
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.partner_http import partner_gates
from tovplus.services import catalog
from tovplus.services import sync as syncs
from tovplus.settings import Settings

CONNECTIONS = 50
RATE = 5


class PolitePrinter(PrintingPartnerAdapter):
    """The printing adapter declaring what its partner takes; one request per sync."""

    partner_limits: ClassVar[PartnerLimits | None] = PartnerLimits(requests_per_second=RATE, max_concurrent=3)

    def sync(self, ctx: SyncContext) -> SyncResult:
        base, account = ctx.config["api_base_url"], ctx.config["account_id"]
        r = ctx.http.get(
            f"{base}/accounts/{account}", headers={"authorization": f"Bearer {ctx.secrets['api_key']}"}
        )
        r.raise_for_status()
        return SyncResult(records=[], summary="checked")


@pytest.fixture
def sim() -> Iterator[Sim]:
    with simulator() as s:
        yield s


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    registry = AdapterRegistry()
    registry.register(PolitePrinter)
    registry.register(VenueOpsAdapter)
    partner_gates.clear()
    runtime = build_runtime(tuned(settings, sync_http_timeout_seconds=5.0), registry=registry)
    yield runtime
    runtime.close()
    partner_gates.clear()


def test_fifty_connections_at_five_per_second_never_exceed_it_at_the_partner(rt, sim):
    made = [make_connection(rt, sim.url) for _ in range(CONNECTIONS)]
    run_ids = []
    for m in made:
        with rt.db.write() as session:
            run_ids.append(syncs.enqueue_run(session, m.connection_id, trigger="manual", requested_by="t")[0])
    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(lambda r: syncs.execute_run(rt, r, worker_id="w").state, run_ids))
    assert outcomes == ["succeeded"] * CONNECTIONS
    stats = sim.stats()
    assert stats["requests"] == CONNECTIONS
    per_second: dict[str, int] = stats["per_second"]
    assert sum(per_second.values()) == CONNECTIONS
    assert max(per_second.values()) <= RATE, per_second
    assert stats["max_in_flight"] <= 3


def test_the_catalog_shows_the_limits(rt):
    entry = catalog.adapter_view(rt.registry.get("printing_partner"))
    assert entry.partner_limits == {"requests_per_second": 5, "max_concurrent": 3}


@pytest.mark.no_db
def test_the_gate_admits_at_most_the_rate_in_any_window_with_a_fake_clock():
    now = [0.0]
    starts: list[float] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    gate = PartnerGate(PartnerLimits(requests_per_second=5), clock=lambda: now[0], sleep=sleep)
    for _ in range(40):
        gate.enter()
        starts.append(now[0])
        gate.leave()
    for i, t in enumerate(starts):
        assert sum(1 for u in starts[i:] if u < t + 1.0) <= 5
    assert starts[-1] < 40 / 5 * 1.2  # it waits, it does not stall


@pytest.mark.no_db
@pytest.mark.parametrize(
    "bad", [{"requests_per_second": 0}, {"requests_per_second": float("nan")}, {"max_concurrent": 0}]
)
def test_unsound_limits_are_refused(bad: dict[str, Any]):
    with pytest.raises(ValueError, match="must be"):
        PartnerLimits(**bad)
