"""Resident memory (RSS) of ``tovplus serve``, idle and under load, beside a bare uvicorn + FastAPI
process measured in the same run.

* **bare**: ``uvicorn bench._bare:app`` (one route returning a small JSON object): RSS once it
  answers and has settled, then the peak while a second process drives ``GET /bare``.
* **serve**: ``tovplus serve`` (API, pages, embedded worker and scheduler) on a fresh embedded
  SQLite data dir, beside the partner simulator (its own process). *Idle*: RSS once it answers
  and has settled, with a planner and nothing to do. *Under load*: the peak RSS (sampled every
  100 ms) while 20 enabled ``printing_partner`` connections sync every 2 s against the simulator
  (each sync emits a webhook to a local receiver) and two load processes drive callbacks (each
  with its own delivery id, so every one is stored) and planner reads at the same time.
  Then, informational: RSS once the load has stopped and settled, beside the idle figure.

Targets (issue 6): under 200 MB idle, under 300 MB under load. ``python -m bench memory [--quick]``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench import Figure
from bench._harness import Load, drive, free_port, rss_mb, server, uvicorn_stack_args

IDLE_TARGET_MB = 200.0
LOADED_TARGET_MB = 300.0
CONNECTIONS = 20
SETTLE_SECONDS = 3.0


def settled_rss(pid: int, seconds: float = SETTLE_SECONDS) -> float:
    """RSS after ``seconds`` of quiet: the median of a few samples over the last second."""
    time.sleep(max(0.0, seconds - 1.0))
    samples = []
    for _ in range(5):
        samples.append(rss_mb(pid))
        time.sleep(0.2)
    return sorted(samples)[len(samples) // 2]


def peak_rss_while(pid: int, work: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``work()`` and return ``(peak RSS of pid in MiB while it ran, its result)``."""
    peak = rss_mb(pid)
    done = threading.Event()
    result: list[Any] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # re-raised in the caller
            error.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while not done.wait(0.1):
        peak = max(peak, rss_mb(pid))
    thread.join()
    if error:
        raise error[0]
    return max(peak, rss_mb(pid)), result[0]


@contextmanager
def webhook_receiver() -> Iterator[str]:
    """A local receiver answering 200 (in this process: it only has to swallow a few webhooks)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/hooks"
    finally:
        httpd.shutdown()
        httpd.server_close()


def seed_planner(data_dir: Path, secret_keys: str) -> str:
    """Migrate a fresh embedded database and create a planner; returns the planner's token."""
    from tovplus.db.migrate import upgrade
    from tovplus.runtime import build_runtime
    from tovplus.services.auth import create_user, issue_user_token
    from tovplus.settings import Settings

    rt = build_runtime(
        Settings(data_dir=data_dir, secret_keys=secret_keys, allow_private_urls=True, queue_url="memory://")
    )
    try:
        upgrade(rt.db.engine)
        with rt.db.write() as session:
            user = create_user(session, "bench-planner@example.com", "planner")
            return issue_user_token(session, user)
    finally:
        rt.close()


def serve_env(data_dir: Path, secret_keys: str, **extra: str) -> dict[str, str]:
    return {
        "TOVPLUS_DATA_DIR": str(data_dir),
        "TOVPLUS_DATABASE_URL": "",  # the embedded default under the data dir
        "TOVPLUS_QUEUE_URL": "",
        "TOVPLUS_SECRET_KEYS": secret_keys,
        "TOVPLUS_ALLOW_PRIVATE_URLS": "true",
        "TOVPLUS_LOG_LEVEL": "WARNING",
        "TOVPLUS_CALLBACK_RATE_PER_MINUTE": "1000000",
        **extra,
    }


def setup_connections(base: str, token: str, sim_url: str, hook_url: str, count: int) -> dict[str, str]:
    """An occasion with a webhook endpoint and ``count`` enabled connections; ``{"occasion_id",
    "connection_id", "issued_key"}`` of the first connection."""
    from tovplus.partner_sim import DEMO_ACCOUNT_ID, DEMO_API_KEY

    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        r = api.post("/v1/occasions", json={"name": "Bench wedding", "starts_on": "2027-06-12"})
        r.raise_for_status()
        occasion_id = r.json()["occasion"]["id"]
        api.post(
            f"/v1/occasions/{occasion_id}/webhook-endpoints",
            json={"url": hook_url, "event_types": ["integration.sync_completed"]},
        ).raise_for_status()
        first: dict[str, str] = {}
        for _ in range(count):
            r = api.post(
                f"/v1/occasions/{occasion_id}/integrations/connections",
                json={
                    "integration_key": "printing_partner",
                    "config": {"account_id": DEMO_ACCOUNT_ID, "api_base_url": sim_url},
                    "secrets": {"api_key": DEMO_API_KEY},
                    "state": "enabled",
                },
            )
            r.raise_for_status()
            if not first:
                first = {
                    "occasion_id": occasion_id,
                    "connection_id": r.json()["connection"]["id"],
                    "issued_key": r.json()["issued_key"],
                }
        return first


CALLBACK_BODY = json.dumps(
    {
        "event": "order.status_changed",
        "order_id": "bench-order-0001",
        "status": "printing",
        "occurred_at": "2026-11-25T19:40:00Z",
        "tracking_number": None,
    }
)


def _both(*jobs: Callable[[], Load]) -> list[Load]:
    """Run the load generators at the same time (each is its own process)."""
    results: list[Load | None] = [None] * len(jobs)

    def run(i: int) -> None:
        results[i] = jobs[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if any(r is None for r in results):
        raise RuntimeError("a load generator failed")
    return [r for r in results if r is not None]


def measure_bare(requests: int) -> tuple[float, float]:
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "bench._bare:app", "--port", str(port), "--log-level", "warning"]
    args += uvicorn_stack_args()  # the same server stack as tovplus serve
    with server(args, env={}, ready_url=f"http://127.0.0.1:{port}/healthz") as proc:
        idle = settled_rss(proc.pid)
        loaded, _ = peak_rss_while(
            proc.pid, lambda: drive(f"http://127.0.0.1:{port}/bare", concurrency=16, requests=requests)
        )
    return idle, loaded


def measure_serve(root: Path, requests: int) -> tuple[float, float, float, list[Load]]:
    from tovplus.runtime.keyring import generate_key

    secret_keys = generate_key()
    data_dir = root / "data"
    token = seed_planner(data_dir, secret_keys)
    sim_port, port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    base = f"http://127.0.0.1:{port}"
    sim_args = [sys.executable, "-m", "tovplus.cli", "partner-sim", "--port", str(sim_port)]
    serve_args = [sys.executable, "-m", "tovplus.cli", "serve", "--port", str(port)]
    env = serve_env(
        data_dir,
        secret_keys,
        TOVPLUS_SYNC_INTERVAL_SECONDS="2",
        TOVPLUS_SCHEDULER_TICK_SECONDS="0.5",
    )
    with (
        webhook_receiver() as hook_url,
        server(sim_args, env={}, ready_url=f"{sim_url}/healthz"),
        server(serve_args, env=env, ready_url=f"{base}/healthz") as proc,
    ):
        idle = settled_rss(proc.pid)
        first = setup_connections(base, token, sim_url, hook_url, CONNECTIONS)
        callback_url = f"{base}/v1/integrations/callbacks/printing_partner/{first['connection_id']}"
        planner_url = f"{base}/v1/occasions/{first['occasion_id']}/integrations"

        def load() -> list[Load]:
            return _both(
                lambda: drive(
                    callback_url,
                    method="POST",
                    headers={"x-tov-integration-secret": first["issued_key"]},
                    body=CALLBACK_BODY,
                    unique_header="x-tov-delivery-id",
                    unique_prefix="mem",
                    concurrency=16,
                    requests=requests,
                ),
                lambda: drive(
                    planner_url,
                    headers={"Authorization": f"Bearer {token}"},
                    concurrency=4,
                    requests=max(100, requests // 4),
                ),
            )

        loaded, loads = peak_rss_while(proc.pid, load)
        after = settled_rss(proc.pid)
    return idle, loaded, after, loads


def run(quick: bool = False) -> list[Figure]:
    requests = 1_000 if quick else 6_000
    bare_idle, bare_loaded = measure_bare(requests)
    with tempfile.TemporaryDirectory() as tmp:
        idle, loaded, after, loads = measure_serve(Path(tmp), requests)
    errors = sum(load.errors for load in loads)
    return [
        Figure(
            "serve RSS, idle",
            idle,
            "MiB",
            "bare uvicorn+FastAPI RSS, idle",
            bare_idle,
            f"< {IDLE_TARGET_MB:.0f} MiB",
            idle < IDLE_TARGET_MB,
        ),
        Figure(
            f"serve RSS peak, {CONNECTIONS} syncing + callbacks + reads",
            loaded,
            "MiB",
            "bare RSS peak under GET load",
            bare_loaded,
            f"< {LOADED_TARGET_MB:.0f} MiB, no errors",
            loaded < LOADED_TARGET_MB and errors == 0,
        ),
        # informational: what the load left behind (caches, pools, allocator arenas)
        Figure("serve RSS after the load, settled", after, "MiB", "serve RSS, idle (same process)", idle),
    ]


if __name__ == "__main__":
    for figure in run(quick="--quick" in sys.argv):
        print(figure)
