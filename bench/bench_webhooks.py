"""Webhook deliveries per second from one process to a local receiver.

The receiver is a separate process (a threaded ``http.server`` on a loopback port), so
it does not share our GIL. Each delivery is the real thing, the way a worker drains them
(``webhooks.deliver_many``, what the ``webhooks.deliver_many`` task runs): claim a batch
with one conditional update and leases, decrypt the signing secret, sign, POST, record the
batch's attempts and mark them delivered (two write transactions per batch on embedded
SQLite). Each thread drains its own batches. The same-run baseline is raw
``httpx`` POSTs of the same body to the same receiver with the same client: what the
network part alone costs, so the ratio shows our bookkeeping's share.

``TOVPLUS_BENCH_DATABASE_URL`` (e.g. a PostgreSQL URL of an empty database) overrides
the embedded SQLite file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

from sqlalchemy import func, select

from bench import Figure
from tovplus.db.migrate import upgrade
from tovplus.db.models import WebhookDelivery
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.keyring import generate_key
from tovplus.services import webhooks
from tovplus.services.auth import UserCaller, create_user
from tovplus.services.occasions import create_occasion
from tovplus.settings import Settings

T = TypeVar("T")
#: Issue 20: deliveries at >= 0.4x the raw POSTs to the same receiver.
TARGET_RATIO = 0.4
EVENT = "integration.sync_completed"
RECEIVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 65536  # one write per response
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def _start_receiver() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/hooks"


def _runtime(tmp: Path) -> Runtime:
    url = os.environ.get("TOVPLUS_BENCH_DATABASE_URL") or f"sqlite:///{tmp / 'bench.db'}"
    settings = Settings(
        environment="test",
        data_dir=tmp,
        database_url=url,
        queue_url="memory://",
        secret_keys=generate_key(),
        allow_private_urls=True,
    )
    rt = build_runtime(settings)
    upgrade(rt.db.engine)
    return rt


def _emit(rt: Runtime, url: str, count: int) -> list[str]:
    with rt.db.write() as session:
        user = create_user(session, f"bench-{time.time_ns()}@example.com", "planner")
        caller = UserCaller(user.id, user.email, user.role)
        occasion_id = create_occasion(session, caller, "Bench", date(2027, 6, 12)).id
    webhooks.create_endpoint(rt, caller, occasion_id, url=url, event_types=[EVENT])
    ids: list[str] = []
    data = {"connection_id": "con_bench", "integration_key": "printing_partner", "status": "succeeded"}
    for start in range(0, count, 500):
        with rt.db.write() as session:
            for _ in range(min(500, count - start)):
                ids += webhooks.emit_event(session, occasion_id=occasion_id, event_type=EVENT, data=data)
    return ids


def _in_threads(threads: int, items: list[T], work: Callable[[T], object]) -> float:
    """Run ``work`` over ``items`` split across ``threads``; returns the elapsed seconds."""
    chunks = [items[i::threads] for i in range(threads)]
    errors: list[BaseException] = []

    def run(chunk: list[T]) -> None:
        try:
            for item in chunk:
                work(item)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(c,)) for c in chunks]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def run(quick: bool = False) -> list[Figure]:
    count = 300 if quick else 3000
    figures: list[Figure] = []
    proc, url = _start_receiver()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rt = _runtime(Path(tmp))
            try:
                client = webhooks.http_client(allow_private=True)
                body = webhooks.encode_body({"type": EVENT, "id": "wev_bench", "occurred_at": "", "data": {}})
                for threads in (1, 4):
                    ids = _emit(rt, url, count)
                    webhooks.deliver(rt, ids[0], worker_id="warm-up")
                    size = webhooks.BATCH_SIZE
                    batches = [ids[i : i + size] for i in range(1, len(ids), size)]
                    elapsed = _in_threads(
                        threads,
                        batches,
                        lambda b, t=threads: webhooks.deliver_many(rt, b, worker_id=f"bench{t}"),
                    )
                    with rt.db.read() as session:
                        delivered = session.scalar(
                            select(func.count())
                            .select_from(WebhookDelivery)
                            .where(WebhookDelivery.id.in_(ids), WebhookDelivery.state == "delivered")
                        )
                    if delivered != len(ids):
                        raise RuntimeError(f"only {delivered} of {len(ids)} deliveries were delivered")

                    def post(_item: str) -> None:
                        response = client.post(
                            url, content=body, headers={"content-type": "application/json"}
                        )
                        response.raise_for_status()

                    baseline = _in_threads(threads, ids[1:], post)
                    value, base = (len(ids) - 1) / elapsed, (len(ids) - 1) / baseline
                    figures.append(
                        Figure(
                            name=f"webhook deliveries/s, {threads} thread{'s' if threads > 1 else ''} "
                            f"({rt.db.engine.dialect.name})",
                            value=value,
                            unit="deliveries/s",
                            baseline_name=f"raw httpx POSTs/s, {threads} thread{'s' if threads > 1 else ''}",
                            baseline=base,
                            target=f">= {TARGET_RATIO}x",
                            passed=value >= TARGET_RATIO * base,
                        )
                    )
            finally:
                webhooks.close_http_clients()
                rt.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return figures


if __name__ == "__main__":
    for figure in run(quick="--quick" in sys.argv):
        print(figure)
