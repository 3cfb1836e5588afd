"""The refresh race with real processes and the real simulator (issue 15, "Refresh race").

Two ``tovplus worker`` processes and a ``tovplus api`` process share one database (SQLite file
or PostgreSQL, whichever this test pass uses) and one ``guest_messaging`` connection whose grant
was minted at the messaging partner simulator (a thread here), with access tokens living 1 s and
refreshed 0.5 s ahead. The workers need the token for syncs (every second, and "sync now" through
the API) and ``send_invitations`` runs; the API for ``POST …/check`` in a loop. Until the simulator
counted 50 refreshes:

* every refresh presented the newest refresh token, each generation exactly once (the
  simulator's refresh log), none came for a token not due yet (the stored token, read as each
  refresh arrives, was within the margin of expiry), no reuse, the grant never revoked;
* our grant stays ``authorized``, no ``connection.reconnect_required``, every check answered ok.

Then the API's checks pause (so the holder is a worker, mid-sync or mid-action, or its leader's
refresh ahead of expiry), the token endpoint is made slow, the process holding the refresh lease
is SIGKILLed while its call waits there, and the next refresh comes from another process after
that lease expired, with the refresh token the dead call presented (the simulator issued nothing
for it), then syncs and checks go on ok: nothing left broken. About 35-45 s per database.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests import factories
from tests.oauth.support import DUE_SLACK, stored_token_left
from tests.support.sync import (
    Proc,
    env_for,
    free_port,
    kinds,
    queue_url_for,
    tuned,
    wait_for,
    wait_http,
)
from tovplus.db.models import ActionRun, Connection, OAuthGrant, SyncRun
from tovplus.db.states import ConnectionState
from tovplus.integrations.auth import AuthorizationStatus
from tovplus.partner_sim import BackgroundServer, MessagingState, SimState, create_app
from tovplus.runtime import Runtime, build_runtime
from tovplus.services.demo_messaging import seed_messaging_demo
from tovplus.settings import Settings
from tovplus.worker import install_dispatcher

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TTL = 1.0
MARGIN = 0.5
LEASE = 6.0
TOKEN_TIMEOUT = 5.0
#: Below TOKEN_TIMEOUT: the killed holder's call is still waiting when it dies, with seconds to
#: spare on a loaded machine (at 1.5 s the call sometimes finished before the kill).
SLOW_TOKEN = 4.0
EXPIRIES = 50


class WatchedMessaging(MessagingState):
    """The messaging partner, noting as each refresh arrives how long our stored token had left.

    ``watch`` (set once the connection exists) gives that figure (``stored_token_left``);
    ``left`` holds one per refresh, in arrival order.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.watch: Callable[[], float | None] | None = None
        self.left: list[float | None] = []

    def refresh(self, client_id: str, refresh_token: str) -> dict[str, Any]:
        if self.watch is not None:
            self.left.append(self.watch())
        return super().refresh(client_id, refresh_token)


class Sim:
    """The simulator (messaging partner under ``/messaging``) on a loopback port."""

    def __init__(self, url: str, state: WatchedMessaging) -> None:
        self.url, self.state = url, state

    def control(self, **switches: Any) -> None:
        r = httpx.post(f"{self.url}/_control", json=switches, timeout=5)
        assert r.status_code == 200, r.text

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/_control/stats", timeout=5).json())


@pytest.fixture
def sim() -> Iterator[Sim]:
    state = WatchedMessaging(access_ttl=TTL)
    with BackgroundServer(create_app(SimState(demo=False), state)) as server:
        yield Sim(f"{server.url}/messaging", state)


@pytest.fixture
def rt(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Runtime]:
    runtime = build_runtime(
        tuned(
            settings,
            queue_url=queue_url_for(request, tmp_path),
            lease_seconds=3.0,
            oauth_refresh_margin_seconds=MARGIN,
            oauth_refresh_lease_seconds=LEASE,
            oauth_token_timeout_seconds=TOKEN_TIMEOUT,
        )
    )
    yield runtime
    runtime.close()


class Driver:
    """Threads that keep every process needing the token: checks at the API, syncs and actions."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.headers = base, {"Authorization": f"Bearer {token}"}
        self.stop = threading.Event()
        self.checks: list[dict[str, Any]] = []
        self.bad: list[str] = []
        self.api_dead = False
        #: Cleared: the API's check loop pauses (so the lease holder to kill is a worker).
        self.checking = threading.Event()
        self.checking.set()
        self.threads = [threading.Thread(target=self._checks, daemon=True) for _ in range(2)]
        self.threads.append(threading.Thread(target=self._work, daemon=True))

    def __enter__(self) -> Driver:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _post(
        self, client: httpx.Client, path: str, body: dict[str, Any] | None = None
    ) -> httpx.Response | None:
        try:
            return client.post(f"{self.base}{path}", json=body, headers=self.headers, timeout=30)
        except httpx.HTTPError as exc:
            if not self.api_dead:
                self.bad.append(f"{path}: {exc!r}")
            return None

    def _checks(self) -> None:
        with httpx.Client() as client:
            while not self.stop.is_set() and not self.api_dead:
                if not self.checking.wait(0.1):
                    continue
                r = self._post(client, "/check")
                if r is None:
                    continue
                if r.status_code != 200:
                    self.bad.append(f"check {r.status_code}: {r.text[:300]}")
                else:
                    self.checks.append(r.json()["check"])

    def _work(self) -> None:
        n = 0
        with httpx.Client() as client:
            while not self.stop.wait(0.25) and not self.api_dead:
                n += 1
                r = self._post(client, "/sync")
                if r is not None and r.status_code not in (202, 409):
                    self.bad.append(f"sync {r.status_code}: {r.text[:300]}")
                body = {"input": {"message": f"Come to our wedding ({n})"}, "idempotency_key": f"k{n}"}
                r = self._post(client, "/actions/send_invitations", body)
                if r is not None and r.status_code not in (200, 202):
                    self.bad.append(f"action {r.status_code}: {r.text[:300]}")


def grant_of(rt: Runtime, connection_id: str) -> OAuthGrant:
    with rt.db.read() as session:
        grant = session.get(OAuthGrant, connection_id)
        assert grant is not None
        session.expunge(grant)
        return grant


def holder_of(owner: str, workers: list[Proc], api: Proc) -> Proc:
    """The process a lease owner names: a worker's id carries its pid, a check's is ``chk_…``."""
    if owner.startswith("chk_"):
        return api
    pid = owner.split(":")[1]
    found = [w for w in workers if str(w.pid) == pid]
    assert found, f"no process holds {owner!r}"
    return found[0]


def as_epoch(moment: datetime) -> float:
    return moment.timestamp()


def raced_enough(sim: Sim) -> bool:
    """``EXPIRIES`` refreshes yet; fails at once when one was refused (a reuse revokes the grant)."""
    log = sim.stats()["refresh_log"]
    refused = [e for e in log if not e["ok"]]
    assert refused == [], f"the simulator refused a refresh: {refused[:3]} after {len(log)} tries"
    return len(log) >= EXPIRIES


def kill_the_holder(
    rt: Runtime, sim: Sim, connection_id: str, workers: list[Proc], api: Proc, driver: Driver
) -> tuple[OAuthGrant, Proc, float]:
    """Slow the token endpoint, SIGKILL whichever process holds the refresh lease while its call
    waits there, put the endpoint back; ``(the grant as held, the victim, when it died)``."""
    driver.checking.clear()  # only the workers need the token now: kill a worker mid-sync
    time.sleep(0.3)
    sim.control(token_delay_seconds=SLOW_TOKEN)
    calls = sim.stats()["token_requests"]
    # every token call counted from now on waits SLOW_TOKEN s at the simulator, under its caller's
    # lease (LEASE > SLOW_TOKEN, and nobody else can take it meanwhile): once one is there,
    # whoever holds the lease is its caller. (Picking the holder first, from a fresh-looking
    # lease, could pick a fast call's holder just before its call ended: then no call was cut.)
    wait_for(
        lambda: sim.stats()["token_requests"] > calls, timeout=20, interval=0.02, what="a slow token call"
    )
    held = grant_of(rt, connection_id)
    assert held.lease_expires_at is not None
    assert held.lease_owner is not None
    victim = holder_of(held.lease_owner, workers, api)
    driver.api_dead = victim is api
    victim.stop(signal.SIGKILL)
    killed_at = time.time()
    sim.control(token_delay_seconds=0)
    driver.checking.set()
    return held, victim, killed_at


def synced_since(rt: Runtime, connection_id: str, moment: float) -> bool:
    with rt.db.read() as session:
        return any(
            r.state == "succeeded" and r.finished_at is not None and as_epoch(r.finished_at) > moment
            for r in session.scalars(select(SyncRun).where(SyncRun.connection_id == connection_id))
        )


def sync_owners(rt: Runtime, connection_id: str) -> set[str]:
    """The pids of the workers that ran this connection's succeeded syncs."""
    with rt.db.read() as session:
        owners = session.scalars(
            select(SyncRun.lease_owner).where(
                SyncRun.connection_id == connection_id, SyncRun.state == "succeeded"
            )
        )
        return {o.split(":")[1] for o in owners if o}


def succeeded_actions(rt: Runtime) -> int:
    with rt.db.read() as session:
        return len(session.scalars(select(ActionRun.id).where(ActionRun.state == "succeeded")).all())


def test_two_workers_and_an_api_refresh_each_expiry_once_and_survive_a_killed_holder(
    rt: Runtime, sim: Sim, tmp_path: Path
) -> None:
    made = factories.user(rt)
    assert made.token is not None
    occasion_id = factories.occasion(rt, made.caller)
    for name in ("Iryna", "Maksym"):
        factories.guest(rt, made.caller, occasion_id, name, f"{name.lower()}@example.com")
    assert "authorized at the simulator" in seed_messaging_demo(rt, made.caller, occasion_id, sim.url)
    with rt.db.write() as session:
        conn = session.scalars(
            select(Connection).where(Connection.integration_key == "guest_messaging")
        ).one()
        # Where the connection's validation does not read the grant's status yet (this branch's
        # base: tests/occasions/test_demo_messaging.py fails the same way), the demo leaves the
        # authorized connection a draft: enable it, as the demo does once that is wired.
        if conn.state == ConnectionState.DRAFT:
            conn.state = ConnectionState.ENABLED.value
        connection_id = conn.id
    sim.state.watch = lambda: stored_token_left(rt, connection_id)

    env = env_for(
        rt.settings,
        TOVPLUS_WORKER_THREADS="3",
        TOVPLUS_SYNC_INTERVAL_SECONDS="1",
        TOVPLUS_OAUTH_REFRESH_MARGIN_SECONDS=str(MARGIN),
        TOVPLUS_OAUTH_REFRESH_LEASE_SECONDS=str(LEASE),
        TOVPLUS_OAUTH_TOKEN_TIMEOUT_SECONDS=str(TOKEN_TIMEOUT),
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),  # this checkout's code
    )
    # the queue's tables exist before three processes start (on PostgreSQL, two creating them at
    # once can collide: CREATE TABLE IF NOT EXISTS is not safe against a concurrent creator)
    install_dispatcher(rt).huey.storage.close()
    port = free_port()
    api = Proc(["api", "--port", str(port)], env, tmp_path / "api.log")
    workers = [Proc(["worker"], env, tmp_path / f"worker-{i}.log") for i in (1, 2)]
    procs = [api, *workers]
    base = f"http://127.0.0.1:{port}/v1/occasions/{occasion_id}/integrations/connections/{connection_id}"
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=api, timeout=60)
        for w in workers:
            wait_for(lambda w=w: "consuming with" in w.output(), timeout=60, what="worker start")
        with Driver(base, made.token) as driver:
            # --- the race: >= 50 expiries with all three processes asking ----------------------
            wait_for(lambda: raced_enough(sim), timeout=100, interval=0.2, what=f"{EXPIRIES} refreshes")
            raced = sim.stats()
            left_in_race = sim.state.left[: len(raced["refresh_log"])]
            checks_in_race = list(driver.checks)
            raced_syncs, raced_actions = sync_owners(rt, connection_id), succeeded_actions(rt)

            # --- a holder SIGKILLed mid-call ---------------------------------------------------
            before = len(sim.stats()["refresh_log"])
            held, victim, killed_at = kill_the_holder(rt, sim, connection_id, workers, api, driver)
            wait_for(
                lambda: (
                    len([e for e in sim.stats()["refresh_log"][before:] if e["ok"]]) >= 3
                    and synced_since(rt, connection_id, killed_at)
                ),
                timeout=30,
                interval=0.1,
                what="refreshes and a sync after the kill",
            )
    finally:
        for p in procs:
            p.stop()
    logs = "\n".join(f"--- {p.log_path.name}\n{p.output()[-3000:]}" for p in procs)

    # the race: one refresh per expiry, always the newest refresh token
    stats_after = sim.stats()
    log = stats_after["refresh_log"]
    race_log = raced["refresh_log"]
    assert raced["reuse_attempts"] == 0, logs
    assert [e for e in race_log if not e["ok"]] == [], logs
    assert [e["generation"] for e in race_log] == list(range(1, len(race_log) + 1))
    assert all(e["generation"] == e["current"] for e in race_log)
    assert len(left_in_race) == len(race_log), left_in_race
    assert None not in left_in_race, left_in_race
    early = [round(t, 3) for t in left_in_race if t is not None and t > MARGIN + DUE_SLACK]
    assert early == [], f"refreshes of tokens not due yet (two refreshes of one expiry): {early}"
    assert len(race_log) >= EXPIRIES
    assert checks_in_race, "the API never answered a check during the race"
    assert all(c["ok"] for c in checks_in_race), [c for c in checks_in_race if not c["ok"]]
    assert driver.bad == [], driver.bad
    if victim is not api:  # the API went on checking after the kill, and every check was ok
        assert len(driver.checks) > len(checks_in_race)
        assert all(c["ok"] for c in driver.checks), [c for c in driver.checks if not c["ok"]]
    # all three needed the token: both workers synced, actions ran, the API checked
    assert raced_syncs == {str(w.pid) for w in workers}, raced_syncs
    assert raced_actions > 0
    assert raced["message_requests"] > 0

    # the kill: the dead call issued nothing; the next refresh came after its lease had expired,
    # presenting the same refresh token, from a process still alive
    assert stats_after["abandoned_token_calls"] == 1, (
        f"the holder was not killed mid-call: {held.lease_owner} ({victim.log_path.name}), "
        f"abandoned={stats_after['abandoned_token_calls']}\n{logs}"
    )
    after = [e for e in log[before:] if e["at"] > killed_at]
    assert after, log[before:]
    assert all(e["ok"] for e in log[before:]), log[before:]
    assert after[0]["at"] >= as_epoch(held.lease_expires_at) - 0.05, (after[0], held.lease_expires_at)
    prior = [e for e in log if e["at"] <= killed_at]
    assert after[0]["generation"] == prior[-1]["generation"] + 1  # the dead call's token, unrotated
    assert [e["generation"] for e in log] == list(range(1, len(log) + 1))

    # nothing left broken
    stats = stats_after
    assert stats["reuse_attempts"] == 0
    assert [g["revoked"] for g in stats["grants"]] == [False]
    final = grant_of(rt, connection_id)
    assert final.status == AuthorizationStatus.AUTHORIZED
    assert final.lease_owner != held.lease_owner
    assert "connection.reconnect_required" not in kinds(rt, connection_id)
    print(  # shown with -s
        f"refreshes={len(log)} checks={len(driver.checks)} api_requests={stats['api_requests']} "
        f"rejected={stats['api_rejected']} messages={stats['message_requests']} victim={victim.log_path.name}"
    )
