"""Soak test (``make soak``): ``tovplus serve`` plus the partner simulator under mixed load on
loopback for a bounded time, then a one-line verdict; the exit status is non-zero on failure.

Usage: ``make soak`` (10 minutes) or ``SOAK_SECONDS=60 .venv/bin/python scripts/soak.py``.
``SOAK_DATABASE_URL`` (an empty, migrated-or-not PostgreSQL database) replaces the embedded
SQLite file; ``SOAK_KEEP=1`` keeps the data dir and the logs (their path is printed).

What runs, all at once, for ``SOAK_SECONDS`` (default 600):

* **callbacks** (3 threads): ``order.status_changed`` callbacks to 10 enabled connections, each
  with its own delivery id, for one of ``ORDER_POOL`` orders (an order's status changes many
  times; new orders for ever would grow the records table, which retention rightly keeps);
  now and then the repeat of an accepted one, which must
  be a ``200 duplicate`` with the first activity id;
* **planner and admin reads** (1 thread): the occasion overview, a connection, its records and
  activity, the admin list and feed;
* **lifecycle changes** (1 thread): connections created enabled, used, disabled (callback 409),
  enabled, key rotated (old key 401, new key 202), edited, revoked (401) — every answer checked;
  in a new occasion every ``CYCLES_PER_OCCASION`` cycles, as planners' occasions come and go (in
  one occasion the revoked connections would pile up by the thousand, and the overview, which
  lists them all, would grow with them: growth of the load, not of the server);
* **syncs**: every enabled connection is scheduled every 5 s (``TOVPLUS_SYNC_INTERVAL_SECONDS``)
  and manual syncs are requested every 0.5 s; every 20 s the simulator answers a few requests
  with 500 (retries); each finished sync emits a webhook to a local receiver.

Then the load stops and the checks run (after at most 60 s for queued work to settle):

* zero 5xx and zero dropped connections, and no answer other than the one the step expects;
* no lost callbacks: every accepted callback has its record, and every one accepted within the
  last ``RETENTION_SECONDS - RETENTION_SLACK`` its ``callback_deliveries`` row (with the activity
  id it was answered with; older ones may have been pruned, as retention says);
* every due sync ran: every run requested before the end is final (succeeded or failed), no
  enabled connection is overdue by more than 30 s, and each of the 10 connections synced;
* every webhook delivered or still scheduled (none failed), and the receiver saw every
  delivered ``webhook-id``;
* RSS growth of ``serve`` under 10 %: the median of the last 10 s of load against the median of
  the 10 s after warm-up (20 % of the run, at least 15 s, at most 120 s);
* the database levels off: the soak shortens retention to ``RETENTION_SECONDS`` (the retention
  settings take fractions of a day) and the prune interval to ``PRUNE_INTERVAL``, so by the middle
  of the run every pruned table holds only its last ``RETENTION_SECONDS`` of rows and SQLite
  reuses the freed pages; the size (the database file with its ``-wal``, plus ``queue.db`` and
  its ``-wal``; ``pg_database_size`` on PostgreSQL) may grow at most ``SIZE_LIMIT`` over the second
  half (median of the last 10 s against the 10 s after the middle). Without pruning
  (``SOAK_PRUNE=0``) it grows with the load and this check fails;
* reported, not judged: the callback p99 inside the windows where a prune tick ran (from the
  ``pruned N rows`` lines in the server's log) against the p99 outside them;
* no traceback in the server's log.
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from bench._harness import free_port, rss_mb  # noqa: E402
from sqlalchemy import select  # noqa: E402

from tovplus.db.migrate import upgrade  # noqa: E402
from tovplus.db.models import (  # noqa: E402
    CallbackDelivery,
    Connection,
    SyncedRecord,
    SyncRun,
    WebhookDelivery,
)
from tovplus.db.types import utcnow  # noqa: E402
from tovplus.partner_sim import DEMO_ACCOUNT_ID, DEMO_API_KEY  # noqa: E402
from tovplus.runtime import Runtime, build_runtime  # noqa: E402
from tovplus.runtime.keyring import generate_key  # noqa: E402
from tovplus.services.auth import create_user, issue_user_token  # noqa: E402
from tovplus.settings import Settings  # noqa: E402

STABLE_CONNECTIONS = 10
SYNC_INTERVAL = 5
OVERDUE_SLACK = timedelta(seconds=30)
SETTLE_SECONDS = 60.0
RSS_LIMIT = 0.10
CALLBACK_THREADS = 3
CYCLES_PER_OCCASION = 50
ORDER_POOL = 200
#: Retention the soak gives ``serve`` (every pruned table), and its prune interval: short enough
#: that the pruned tables are at their steady size by the middle of a 150 s run.
RETENTION_SECONDS = 30
PRUNE_INTERVAL = 10
#: A row younger than ``RETENTION_SECONDS - RETENTION_SLACK`` when the checks read must still be there.
RETENTION_SLACK = 10
#: Growth of the database over the second half of the load. What still grows with retention on is
#: the load's own live data (the lifecycle thread's connections, about two a second, and their
#: occasions and records), a few per cent of the size; without pruning the size grows with every
#: callback, activity entry, sync run and webhook delivery, well over this.
SIZE_LIMIT = 0.10
#: How often the soak vacuums a PostgreSQL server whose autovacuum is off (its naptime is 60 s).
VACUUM_INTERVAL = 20
#: A prune tick spends at most ``prune_tick_budget_seconds`` (0.5 s) before it logs its line.
PRUNE_WINDOW = 0.6
DAY = 86_400.0


def log(message: str) -> None:
    print(f"soak: {message}", file=sys.stderr, flush=True)


# --- bookkeeping shared by the load threads -----------------------------------------------------------


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    #: (connection_id, delivery_id) -> (order_id, activity_id, wall-clock time) of every accepted callback
    accepted: dict[tuple[str, str], tuple[str, str, float]] = field(default_factory=dict)
    duplicates_checked: int = 0
    #: run id -> wall-clock time of its request
    run_ids: dict[str, float] = field(default_factory=dict)
    #: (wall-clock start, seconds) of every accepted callback
    latencies: list[tuple[float, float]] = field(default_factory=list)
    lifecycle_cycles: int = 0

    def request(
        self,
        client: httpx.Client,
        kind: str,
        method: str,
        url: str,
        expect: tuple[int, ...],
        **kwargs: Any,
    ) -> httpx.Response | None:
        try:
            response = client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            with self.lock:
                self.transport_errors.append(f"{kind}: {type(exc).__name__}: {exc}"[:300])
            return None
        with self.lock:
            self.statuses[f"{kind} {response.status_code}"] += 1
            if response.status_code >= 500:
                self.server_errors.append(
                    f"{kind} {method} {url}: {response.status_code} {response.text[:200]}"
                )
            elif response.status_code not in expect:
                self.unexpected.append(
                    f"{kind} {method} {url}: {response.status_code} (expected {expect}) {response.text[:200]}"
                )
        return response


# --- processes, receiver, seed --------------------------------------------------------------------------


class Process:
    """A child process whose output goes to a log file (a pipe nobody reads would fill up)."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            args, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT
        )

    def wait_ready(self, url: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.log_path.name}: exited early:\n{self.output()[-2000:]}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")
            time.sleep(0.2)

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()
        return int(self.popen.returncode)


@dataclass
class Receiver:
    """Webhook receiver on 127.0.0.1: answers 200, remembers every ``webhook-id``."""

    ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                with lock:
                    receiver.ids.append(self.headers.get("webhook-id") or "")
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.1,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def seed(rt: Runtime) -> tuple[str, str]:
    """Migrate, then create a planner and an admin; their bearer tokens."""
    upgrade(rt.db.engine)
    tokens = []
    with rt.db.write() as session:
        for role in ("planner", "admin"):
            user = create_user(session, f"soak-{role}-{os.urandom(3).hex()}@example.com", role)
            tokens.append(issue_user_token(session, user))
    return tokens[0], tokens[1]


# --- the load -----------------------------------------------------------------------------------------


def callback_body(order_id: str) -> dict[str, Any]:
    return {
        "event": "order.status_changed",
        "order_id": order_id,
        "status": random.choice(["received", "printing", "shipped"]),
        "occurred_at": "2026-11-25T19:40:00Z",
        "tracking_number": None,
    }


class Load:
    def __init__(self, base: str, planner: str, admin: str, occasion_id: str, sim_url: str) -> None:
        self.base = base
        self.planner = {"Authorization": f"Bearer {planner}"}
        self.admin = {"Authorization": f"Bearer {admin}"}
        self.occasion_id = occasion_id
        self.sim_url = sim_url
        self.tally = Tally()
        self.stop = threading.Event()
        self.keys: dict[str, str] = {}
        self.sequence = itertools.count()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30)

    @property
    def connections_path(self) -> str:
        return f"/v1/occasions/{self.occasion_id}/integrations/connections"

    def create_occasion(self, client: httpx.Client, name: str) -> str | None:
        r = self.tally.request(
            client,
            "occasion",
            "POST",
            "/v1/occasions",
            (201,),
            headers=self.planner,
            json={"name": name, "starts_on": "2027-06-12"},
        )
        return str(r.json()["occasion"]["id"]) if r is not None and r.status_code == 201 else None

    def create_connection(self, client: httpx.Client, where: str | None = None) -> tuple[str, str] | None:
        r = self.tally.request(
            client,
            "create",
            "POST",
            where or self.connections_path,
            (201,),
            headers=self.planner,
            json={
                "integration_key": "printing_partner",
                "config": {"account_id": DEMO_ACCOUNT_ID, "api_base_url": self.sim_url},
                "secrets": {"api_key": DEMO_API_KEY},
                "state": "enabled",
            },
        )
        if r is None or r.status_code != 201:
            return None
        return r.json()["connection"]["id"], r.json()["issued_key"]

    def callback(self, client: httpx.Client, connection_id: str, key: str, expect: tuple[int, ...]) -> None:
        n = next(self.sequence)
        delivery_id, order_id = f"soak-{n}", f"soak-order-{n % ORDER_POOL:04d}"
        sent, t0 = time.time(), time.perf_counter()
        r = self.tally.request(
            client,
            "callback",
            "POST",
            f"/v1/integrations/callbacks/printing_partner/{connection_id}",
            expect,
            json=callback_body(order_id),
            headers={"x-tov-integration-secret": key, "x-tov-delivery-id": delivery_id},
        )
        if r is not None and r.status_code == 202:
            took = time.perf_counter() - t0
            with self.tally.lock:
                self.tally.accepted[(connection_id, delivery_id)] = (order_id, r.json()["activity_id"], sent)
                self.tally.latencies.append((sent, took))

    def repeat(self, client: httpx.Client) -> None:
        with self.tally.lock:
            if not self.tally.accepted:
                return
            (connection_id, delivery_id), (order_id, activity_id, _at) = random.choice(
                list(self.tally.accepted.items())[-500:]
            )
        if connection_id not in self.keys:
            return
        r = self.tally.request(
            client,
            "callback-repeat",
            "POST",
            f"/v1/integrations/callbacks/printing_partner/{connection_id}",
            (200,),
            json=callback_body(order_id),
            headers={"x-tov-integration-secret": self.keys[connection_id], "x-tov-delivery-id": delivery_id},
        )
        if r is not None and r.status_code == 200:
            with self.tally.lock:
                self.tally.duplicates_checked += 1
                if r.json() != {"status": "duplicate", "activity_id": activity_id}:
                    self.tally.unexpected.append(f"repeat of {delivery_id}: {r.text[:200]}")

    # each loop runs on its own thread until ``stop``

    def callbacks_loop(self) -> None:
        stable = list(self.keys)
        with self.client() as client:
            for i in itertools.count():
                if self.stop.is_set():
                    return
                if i % 25 == 24:
                    self.repeat(client)
                else:
                    connection_id = random.choice(stable)
                    self.callback(client, connection_id, self.keys[connection_id], (202,))
                time.sleep(0.01)

    def reads_loop(self) -> None:
        stable = list(self.keys)
        occ = f"/v1/occasions/{self.occasion_id}"
        with self.client() as client:
            while not self.stop.is_set():
                c = random.choice(stable)
                for kind, path, headers in (
                    ("overview", f"{occ}/integrations", self.planner),
                    ("connection", f"{self.connections_path}/{c}", self.planner),
                    ("records", f"{self.connections_path}/{c}/records?limit=50", self.planner),
                    ("activity", f"{occ}/integrations/activity?connection_id={c}", self.planner),
                    ("admin-list", "/v1/admin/integrations?limit=50", self.admin),
                    ("admin-feed", "/v1/admin/integrations/activity?limit=50", self.admin),
                ):
                    self.tally.request(client, kind, "GET", path, (200,), headers=headers)
                    time.sleep(0.02)

    def lifecycle_loop(self) -> None:
        where = self.connections_path
        with self.client() as client:
            for cycle in itertools.count():
                if self.stop.is_set():
                    return
                if cycle % CYCLES_PER_OCCASION == CYCLES_PER_OCCASION - 1:
                    occasion_id = self.create_occasion(
                        client, f"Soak occasion {cycle // CYCLES_PER_OCCASION}"
                    )
                    if occasion_id is not None:
                        where = f"/v1/occasions/{occasion_id}/integrations/connections"
                made = self.create_connection(client, where)
                if made is None:
                    time.sleep(1)
                    continue
                connection_id, key = made
                path = f"{where}/{connection_id}"

                def patch(body: dict[str, Any], kind: str, path: str = path) -> httpx.Response | None:
                    return self.tally.request(
                        client, kind, "PATCH", path, (200,), headers=self.planner, json=body
                    )

                self.callback(client, connection_id, key, (202,))
                patch({"state": "disabled"}, "disable")
                self.callback(client, connection_id, key, (409,))
                patch({"state": "enabled"}, "enable")
                r = patch({"rotate_key": True}, "rotate")
                if r is not None and r.status_code == 200:
                    self.callback(client, connection_id, key, (401,))
                    key = r.json()["issued_key"]
                self.callback(client, connection_id, key, (202,))
                patch({"config": {"account_id": DEMO_ACCOUNT_ID, "api_base_url": self.sim_url + "/"}}, "edit")
                patch({"state": "revoked"}, "revoke")
                self.callback(client, connection_id, key, (401,))
                with self.tally.lock:
                    self.tally.lifecycle_cycles += 1
                self.stop.wait(0.5)

    def syncs_loop(self) -> None:
        stable = list(self.keys)
        with self.client() as client:
            for i in itertools.count():
                if self.stop.wait(0.5):
                    return
                c = stable[i % len(stable)]
                r = self.tally.request(
                    client, "sync", "POST", f"{self.connections_path}/{c}/sync", (202,), headers=self.planner
                )
                if r is not None and r.status_code == 202:
                    with self.tally.lock:
                        self.tally.run_ids[r.json()["sync_run_id"]] = time.time()

    def faults_loop(self) -> None:
        while not self.stop.wait(20):
            try:
                httpx.post(f"{self.sim_url}/_control", json={"mode": "error500", "times": 4}, timeout=5)
            except httpx.HTTPError as exc:
                log(f"could not switch the simulator's fault: {exc}")


def vacuum_stand_in(rt: Runtime, stop: threading.Event) -> Callable[[], None] | None:
    """On a PostgreSQL server whose autovacuum is off (test servers often run so), a loop that
    vacuums every ``VACUUM_INTERVAL`` s as the autovacuum daemon would: without it no deleted row's
    space is ever reused, and the size check would judge the server's settings, not the pruning."""
    if rt.db.engine.dialect.name != "postgresql":
        return None
    with rt.db.engine.connect() as conn:
        if conn.exec_driver_sql("SHOW autovacuum").scalar_one() == "on":
            return None
    log(f"PostgreSQL's autovacuum is off: the soak vacuums every {VACUUM_INTERVAL} s in its place")

    def vacuum_loop() -> None:
        while not stop.wait(VACUUM_INTERVAL):
            with rt.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM")

    return vacuum_loop


@contextmanager
def threads(*targets: Callable[[], None]) -> Iterator[list[threading.Thread]]:
    started = [threading.Thread(target=t, daemon=True, name=t.__name__) for t in targets]
    for t in started:
        t.start()
    try:
        yield started
    finally:
        for t in started:
            t.join(60)


# --- checks --------------------------------------------------------------------------------------------


def median_between(samples: list[tuple[float, float]], start: float, end: float, what: str = "RSS") -> float:
    values = [v for t, v in samples if start <= t <= end]
    if not values:
        raise RuntimeError(f"no {what} samples between {start:.0f}s and {end:.0f}s")
    return statistics.median(values)


def database_mb(rt: Runtime, data_dir: Path) -> float:
    """The embedded database file with its ``-wal`` and the queue's, or PostgreSQL's own figure."""
    size = 0
    names = ["queue.db", "queue.db-wal"]
    if rt.db.engine.dialect.name == "sqlite":
        names += ["tovplus.db", "tovplus.db-wal"]
    else:
        with rt.db.engine.connect() as conn:
            size += int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one())
    for name in names:
        path = data_dir / name
        size += path.stat().st_size if path.exists() else 0
    return size / 2**20


def prune_windows(server_log: str) -> list[tuple[float, float]]:
    """Wall-clock spans of the prune ticks that deleted rows, from their ``pruned N rows`` lines."""
    spans = []
    for line in server_log.splitlines():
        if " pruned " not in line or "tovplus.services.retention" not in line:
            continue
        try:
            at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        except ValueError:
            continue
        spans.append((at - PRUNE_WINDOW, at + 0.02))
    return spans


def p99_ms(values: list[float]) -> str:
    if len(values) < 100:
        return f"n/a ({len(values)} callbacks)"
    q = statistics.quantiles(values, n=100)
    return f"{q[98] * 1000:.1f} ms (p50 {q[49] * 1000:.1f}, {len(values)} callbacks)"


def callback_p99s(latencies: list[tuple[float, float]], spans: list[tuple[float, float]]) -> str:
    """Callback p99 of the callbacks that overlapped a prune tick, and of the others."""
    spans.sort()
    starts = [a for a, _ in spans]
    during: list[float] = []
    outside: list[float] = []
    for sent, took in latencies:
        i = bisect.bisect_right(starts, sent + took) - 1
        overlaps = i >= 0 and spans[i][1] >= sent
        (during if overlaps else outside).append(took)
    return f"callback p99 {p99_ms(during)} during {len(spans)} prune ticks, {p99_ms(outside)} outside"


def main() -> int:
    duration = float(os.environ.get("SOAK_SECONDS", "600"))
    if duration < 30:
        print("soak: SOAK_SECONDS must be at least 30", file=sys.stderr)
        return 2
    warmup = min(120.0, max(15.0, duration * 0.2))
    pruning = os.environ.get("SOAK_PRUNE", "1") != "0"
    workdir = Path(tempfile.mkdtemp(prefix="tovplus-soak-"))
    data_dir = workdir / "data"
    secret_keys = generate_key()
    database_url = os.environ.get("SOAK_DATABASE_URL") or f"sqlite:///{data_dir / 'tovplus.db'}"
    data_dir.mkdir(parents=True)
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        queue_url="memory://",
        secret_keys=secret_keys,
        allow_private_urls=True,
    )
    rt = build_runtime(settings)
    planner_token, admin_token = seed(rt)
    receiver = Receiver()
    sim_port, port = free_port(), free_port()
    sim_url, base = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOVPLUS_")}
    env.update(
        {
            "TOVPLUS_DATA_DIR": str(data_dir),
            "TOVPLUS_DATABASE_URL": database_url,
            "TOVPLUS_SECRET_KEYS": secret_keys,
            "TOVPLUS_ALLOW_PRIVATE_URLS": "true",
            # INFO: the pruner's "pruned N rows" lines time the prune windows (no access log)
            "TOVPLUS_LOG_LEVEL": "INFO",
            "TOVPLUS_SYNC_INTERVAL_SECONDS": str(SYNC_INTERVAL),
            "TOVPLUS_SCHEDULER_TICK_SECONDS": "1",
            "TOVPLUS_LEASE_SECONDS": "15",
            "TOVPLUS_SYNC_RETRY_DELAYS": "1,2",
            "TOVPLUS_WEBHOOK_RETRY_DELAYS": "1,2,5,10,30",
            "TOVPLUS_CALLBACK_RATE_PER_MINUTE": "1000000",
            "TOVPLUS_PRUNE_INTERVAL_SECONDS": str(PRUNE_INTERVAL if pruning else 0),
        }
    )
    for setting in ("CALLBACK_DEDUP", "ACTIVITY_RETENTION", "WEBHOOK_RETENTION", "SYNC_RUN_RETENTION"):
        env[f"TOVPLUS_{setting}_DAYS"] = repr(RETENTION_SECONDS / DAY)
    tovplus = [sys.executable, "-m", "tovplus.cli"]
    sim = Process(
        [*tovplus, "partner-sim", "--port", str(sim_port), "--step-seconds", "5"], env, workdir / "sim.log"
    )
    serve = Process([*tovplus, "serve", "--port", str(port)], env, workdir / "serve.log")
    problems: list[str] = []
    summary: dict[str, Any] = {}
    try:
        sim.wait_ready(f"{sim_url}/healthz")
        serve.wait_ready(f"{base}/healthz")
        log(
            f"serve on {base} (pid {serve.popen.pid}), simulator on {sim_url},"
            f" {duration:.0f}s, data in {workdir}"
        )
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {planner_token}"}, timeout=30
        ) as api:
            r = api.post("/v1/occasions", json={"name": "Soak wedding", "starts_on": "2027-06-12"})
            r.raise_for_status()
            occasion_id = r.json()["occasion"]["id"]
            api.post(
                f"/v1/occasions/{occasion_id}/webhook-endpoints",
                json={"url": receiver.url, "event_types": ["integration.sync_completed"]},
            ).raise_for_status()
        load = Load(base, planner_token, admin_token, occasion_id, sim_url)
        with load.client() as client:
            for _ in range(STABLE_CONNECTIONS):
                made = load.create_connection(client)
                if made is None:
                    raise RuntimeError(f"could not create a connection: {load.tally.unexpected[-1:]}")
                load.keys[made[0]] = made[1]

        started = time.monotonic()
        samples: list[tuple[float, float]] = []
        sizes: list[tuple[float, float]] = [(0.0, database_mb(rt, data_dir))]
        loops = [load.reads_loop, load.lifecycle_loop, load.syncs_loop, load.faults_loop]
        loops += [load.callbacks_loop] * CALLBACK_THREADS
        vacuum_loop = vacuum_stand_in(rt, load.stop)
        loops += [vacuum_loop] if vacuum_loop is not None else []
        with threads(*loops):
            next_report = 30.0
            while (elapsed := time.monotonic() - started) < duration:
                if serve.popen.poll() is not None:
                    problems.append(f"serve exited with {serve.popen.returncode} during the load")
                    break
                samples.append((elapsed, rss_mb(serve.popen.pid)))
                sizes.append((elapsed, database_mb(rt, data_dir)))
                if elapsed >= next_report:
                    log(
                        f"{elapsed:.0f}s: {sum(load.tally.statuses.values())} requests, "
                        f"{len(load.tally.accepted)} callbacks accepted, RSS {samples[-1][1]:.0f} MiB,"
                        f" database {sizes[-1][1]:.1f} MiB"
                    )
                    next_report += 30
                time.sleep(1)
            load.stop.set()
        stopped_at = utcnow()
        elapsed = time.monotonic() - started
        tally = load.tally
        log(f"load stopped after {elapsed:.0f}s; checking")

        # 1. HTTP: no 5xx, no dropped connections, every answer the expected one
        if tally.server_errors:
            problems.append(f"{len(tally.server_errors)} 5xx (first: {tally.server_errors[0]})")
        if tally.transport_errors:
            problems.append(
                f"{len(tally.transport_errors)} dropped requests (first: {tally.transport_errors[0]})"
            )
        if tally.unexpected:
            problems.append(f"{len(tally.unexpected)} unexpected answers (first: {tally.unexpected[0]})")

        # 2. callbacks, read at once (callbacks are answered after their commit; pruning goes on)
        with rt.db.read() as session:
            read_at = time.time()
            stored = {
                (d.connection_id, d.delivery_id): d.activity_id
                for d in session.scalars(select(CallbackDelivery))
            }
            records = {
                (c, e)
                for c, e in session.execute(select(SyncedRecord.connection_id, SyncedRecord.external_id))
            }
        kept_since = read_at - (RETENTION_SECONDS - RETENTION_SLACK)
        young = [key for key, (_o, _a, at) in tally.accepted.items() if at >= kept_since]
        lost = [key[1] for key in young if key not in stored]
        wrong = [key[1] for key, (_o, a, _t) in tally.accepted.items() if key in stored and stored[key] != a]
        no_record = [o for (c, _d), (o, _a, _t) in tally.accepted.items() if (c, o) not in records]
        if lost or wrong or no_record:
            problems.append(
                f"callbacks: {len(lost)} of the {len(young)} younger than the retention lost,"
                f" {len(wrong)} with another activity id,"
                f" {len(no_record)} without their record (first: {(lost + wrong + no_record)[:3]})"
            )

        # 3. settle: every run requested before the end final, no delivery in flight for long
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            with rt.db.read() as session:
                open_runs = session.scalars(
                    select(SyncRun.id).where(
                        SyncRun.state.in_(("queued", "running")), SyncRun.created_at <= stopped_at
                    )
                ).all()
            if not open_runs or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        now = utcnow()
        with rt.db.read() as session:
            read_at = time.time()
            runs = list(session.scalars(select(SyncRun)))
            enabled = list(session.scalars(select(Connection).where(Connection.state == "enabled")))
            deliveries = list(session.scalars(select(WebhookDelivery)))

        # 4. syncs
        requested_before_end = [r for r in runs if r.created_at <= stopped_at]
        not_final = [r.id for r in requested_before_end if r.state not in ("succeeded", "failed")]
        # a finished run older than the retention may have been pruned; a younger one must be there
        kept_since = read_at - (RETENTION_SECONDS - RETENTION_SLACK)
        unknown = {i for i, at in tally.run_ids.items() if at >= kept_since} - {r.id for r in runs}
        overdue = [
            c.id for c in enabled if c.next_sync_at is not None and c.next_sync_at < now - OVERDUE_SLACK
        ]
        never = [
            c for c in load.keys if not any(r.connection_id == c and r.state == "succeeded" for r in runs)
        ]
        if not_final or unknown or overdue or never:
            problems.append(
                f"syncs: {len(not_final)} runs not final {SETTLE_SECONDS:.0f}s after the end,"
                f" {len(unknown)} accepted run ids missing, {len(overdue)} enabled connections overdue,"
                f" {len(never)} connections never synced"
            )
        states = Counter(r.state for r in runs)
        triggers = Counter(r.trigger for r in runs)

        # 5. webhooks
        delivery_states = Counter(d.state for d in deliveries)
        unscheduled = [d.id for d in deliveries if d.state == "pending" and d.next_attempt_at is None]
        unseen = {d.id for d in deliveries if d.state == "delivered"} - set(receiver.ids)
        if delivery_states.get("failed") or unscheduled or unseen or not deliveries:
            problems.append(
                f"webhooks: {delivery_states.get('failed', 0)} failed,"
                f" {len(unscheduled)} pending unscheduled,"
                f" {len(unseen)} delivered but never received, {len(deliveries)} in all"
            )

        # 6. memory
        window = min(10.0, (elapsed - warmup) / 3)
        rss_growth = None
        if window >= 2:
            rss_start = median_between(samples, warmup, warmup + window)
            rss_end = median_between(samples, elapsed - window, elapsed)
            rss_growth = (rss_end - rss_start) / rss_start
            summary["rss"] = (
                f"RSS {rss_start:.0f}->{rss_end:.0f} MiB ({rss_growth:+.1%},"
                f" peak {max(s for _, s in samples):.0f})"
            )
            if rss_growth >= RSS_LIMIT:
                problems.append(f"RSS grew {rss_growth:.1%} after warm-up (limit {RSS_LIMIT:.0%})")
        else:
            problems.append("the run was too short to judge RSS growth")

        # 7. disk: the size levels off over the second half (retention shortened, see SIZE_LIMIT)
        middle = elapsed / 2
        size_start = median_between(sizes, middle, middle + window, "size")
        size_end = median_between(sizes, elapsed - window, elapsed, "size")
        size_growth = (size_end - size_start) / size_start
        summary["disk"] = (
            f"database {sizes[0][1]:.1f}->{size_end:.1f} MiB, {size_growth:+.1%} over the second half"
            f" (pruning {'every ' + str(PRUNE_INTERVAL) + ' s' if pruning else 'off'},"
            f" retention {RETENTION_SECONDS} s)"
        )
        if middle < RETENTION_SECONDS + PRUNE_INTERVAL:
            problems.append("the run was too short to judge the database's size")
        elif size_growth >= SIZE_LIMIT:
            problems.append(
                f"the database grew {size_growth:.1%} over the second half (limit {SIZE_LIMIT:.0%})"
            )
        summary["prune"] = callback_p99s(tally.latencies, prune_windows(serve.output()))

        # 8. the server's log
        tracebacks = serve.output().count("Traceback")
        if tracebacks:
            problems.append(f"{tracebacks} tracebacks in {serve.log_path}")

        requests = sum(tally.statuses.values())
        summary["load"] = (
            f"{requests} requests ({requests / elapsed:.0f}/s): {len(tally.accepted)} callbacks accepted,"
            f" {tally.duplicates_checked} repeats answered duplicate,"
            f" {tally.lifecycle_cycles} lifecycle cycles"
        )
        summary["syncs"] = (
            f"{len(runs)} sync runs ({states.get('succeeded', 0)} succeeded,"
            f" {states.get('failed', 0)} failed;"
            f" {triggers.get('schedule', 0)} scheduled, {triggers.get('manual', 0)} manual)"
        )
        summary["webhooks"] = (
            f"{delivery_states.get('delivered', 0)} webhooks delivered,"
            f" {delivery_states.get('pending', 0) + delivery_states.get('delivering', 0)} scheduled"
        )
        (workdir / "sizes.json").write_text(json.dumps(sizes))  # (seconds into the load, MiB)
        (workdir / "statuses.json").write_text(json.dumps(dict(tally.statuses), indent=2, sort_keys=True))
    except Exception as exc:
        problems.append(f"the soak could not run: {type(exc).__name__}: {exc}")
    finally:
        code = serve.stop()
        sim.stop()
        receiver.stop()
        rt.close()
    if code not in (0, -signal.SIGTERM) and not problems:
        problems.append(f"serve exited with {code} on SIGTERM")
    keep = os.environ.get("SOAK_KEEP") == "1" or bool(problems)
    details = "; ".join(summary.values())
    if problems:
        print(f"SOAK FAIL ({duration:.0f}s): " + " | ".join(problems) + (f" || {details}" if details else ""))
    else:
        print(f"SOAK PASS ({duration:.0f}s): 0 5xx, 0 lost callbacks, every due sync ran; {details}")
    if keep:
        log(f"logs and data kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
