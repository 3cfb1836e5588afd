"""Inbound callbacks over real HTTP, beside two same-run baselines.

Three servers, one at a time, each ``uvicorn`` with one worker on loopback:

* **callbacks**: the real app on an embedded SQLite file with an enabled
  ``printing_partner`` connection — key check, idempotency, mapping, record
  upsert, activity, on the group-commit writer; a 2xx means committed;
* **bare**: an async FastAPI route that only reads and parses the same body;
* **naive**: an async route that parses the body and commits one SQLite insert
  per request from the thread pool (the obvious implementation);
* **callbacks on PostgreSQL**: the real app on a fresh PostgreSQL database, one API process
  (the fleet's path), group commit included.

Every server runs on the same uvicorn stack as ``tovplus api`` (uvloop + httptools when
installed: :func:`tovplus.cli.server_stack`).

The load generator is a second process (raw asyncio sockets, HTTP/1.1 keep-alive,
``CONCURRENCY`` connections, closed loop, every request with its own delivery id),
so it does not share the server's GIL. Each server gets 10 s of measured load, as two
interleaved rounds of 5 s (``--quick``: one round of 3 s), after a warm-up. After each
callbacks run the database is counted: every answered 2xx must be a stored delivery. The callbacks server is
measured with ``TOVPLUS_SQLITE_SYNCHRONOUS=NORMAL`` (survives a process crash) and
``FULL`` (also survives power loss).

``python -m bench callbacks [--quick]``, or ``python -m bench.bench_callbacks``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response

from bench import Figure
from bench._harness import ROOT, free_port, server, uvicorn_stack_args

CONCURRENCY = 32
PATH = "/v1/integrations/callbacks/printing_partner/{connection_id}"
#: issue 20: on the production server stack (uvloop + httptools) at least 0.6x the bare route on
#: SQLite, 0.5x on PostgreSQL (one API process, group commit included); p99 under 30 ms on SQLite
TARGET_RATIO = 0.6
TARGET_RATIO_POSTGRES = 0.5
TARGET_P99_MS = 30.0
#: a loaded machine can take more than the harness default to import and start the app
STARTUP_SECONDS = 180.0


def payload(n: int) -> bytes:
    """A ~300-byte order.status_changed callback; 1,000 distinct orders, so upserts both insert and update."""
    return json.dumps(
        {
            "event": "order.status_changed",
            "order_id": f"wedding-2027-06-12/stationery/invitation-suite-ivory/order-{n % 1000:05d}",
            "status": "proof_approved_and_scheduled_for_letterpress_printing",
            "occurred_at": "2026-11-25T19:40:00Z",
            "tracking_number": f"1Z999AA1012345678{n % 10}-UPS-GROUND-RESIDENTIAL-SIGNATURE",
        },
        separators=(",", ":"),
    ).encode()


# --- the three apps (uvicorn factories) ----------------------------------------------------------------


def real_app() -> FastAPI:
    """The product's API app, configured from ``TOVPLUS_*`` like ``tovplus api``."""
    from tovplus.app import create_app
    from tovplus.runtime import build_runtime
    from tovplus.settings import load_settings

    app = create_app(build_runtime(load_settings()))
    stats_file = os.environ.get("BENCH_WRITER_STATS")
    if stats_file:

        def report() -> None:  # the group-commit writer's batch sizes, for the report
            while True:
                time.sleep(0.5)
                service = getattr(app.state, "callback_service", None)
                if service is not None:
                    stats = service.writer.stats
                    Path(stats_file).write_text(
                        json.dumps(
                            {"batches": stats.batches, "jobs": stats.jobs, "largest": stats.largest_batch}
                        )
                    )

        threading.Thread(target=report, daemon=True).start()
    return app


def bare_app() -> FastAPI:
    """Baseline: an async route that reads and parses the body, nothing else."""
    app = FastAPI()

    @app.post("/v1/integrations/callbacks/{integration_key}/{connection_id}")
    async def bare(integration_key: str, connection_id: str, request: Request) -> Response:
        json.loads(await request.body())
        return Response(b'{"status":"accepted","activity_id":"act_bare"}', 202, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    from tovplus.api.routes.callbacks import tune_interpreter

    tune_interpreter()  # the same interpreter settings as the real app, so the ratio measures our work
    return app


def naive_app() -> FastAPI:
    """Baseline: parse, then commit one SQLite insert per request (thread pool, one connection per thread)."""
    from starlette.concurrency import run_in_threadpool

    path = os.environ["BENCH_NAIVE_DB"]
    synchronous = os.environ.get("TOVPLUS_SQLITE_SYNCHRONOUS", "NORMAL")
    local = threading.local()

    def connection() -> sqlite3.Connection:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous}")
        return conn

    def insert(delivery_id: str, body: bytes) -> None:
        conn = connection()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO deliveries (delivery_id, body) VALUES (?, ?)", (delivery_id, body))
        conn.execute("COMMIT")

    app = FastAPI()

    @app.post("/v1/integrations/callbacks/{integration_key}/{connection_id}")
    async def naive(integration_key: str, connection_id: str, request: Request) -> Response:
        body = await request.body()
        json.loads(body)
        await run_in_threadpool(insert, request.headers.get("x-tov-delivery-id", ""), body)
        return Response(
            b'{"status":"accepted","activity_id":"act_naive"}', 202, media_type="application/json"
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    from tovplus.api.routes.callbacks import tune_interpreter

    tune_interpreter()
    return app


# --- the load generator (second process) -------------------------------------------------------------


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    host, port, path = spec["host"], int(spec["port"]), spec["path"]
    fixed = "".join(f"{k}: {v}\r\n" for k, v in spec["headers"].items())
    prefix = spec["prefix"]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    accepted_total = 0
    measuring = False
    stop = False
    counter = 0

    async def client(index: int) -> None:
        nonlocal errors, accepted_total, counter
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while not stop:
                counter += 1
                n = counter
                body = payload(n)
                head = (
                    f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(body)}\r\n{fixed}x-tov-delivery-id: {prefix}-{index}-{n}\r\n\r\n"
                )
                started = time.perf_counter()
                writer.write(head.encode() + body)
                try:
                    header = await reader.readuntil(b"\r\n\r\n")
                    status = int(header[9:12])
                    length = 0
                    for line in header.split(b"\r\n"):
                        if line[:15].lower() == b"content-length:":
                            length = int(line[15:])
                    await reader.readexactly(length)
                except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                elapsed = time.perf_counter() - started
                if 200 <= status < 300:
                    accepted_total += 1
                if measuring:
                    latencies.append(elapsed)
                    statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    tasks = [asyncio.create_task(client(i)) for i in range(int(spec["concurrency"]))]
    await asyncio.sleep(float(spec["warmup"]))
    measuring = True
    started = time.perf_counter()
    await asyncio.sleep(float(spec["duration"]))
    measuring = False
    elapsed = time.perf_counter() - started
    stop = True
    await asyncio.gather(*tasks, return_exceptions=True)  # in-flight requests finish and are counted
    latencies.sort()
    count = len(latencies)
    return {
        "requests": count,
        "rps": count / elapsed,
        "p50_ms": latencies[count // 2] * 1000 if count else 0.0,
        "p99_ms": latencies[min(count - 1, int(count * 0.99))] * 1000 if count else 0.0,
        "statuses": statuses,
        "errors": errors,
        "accepted_total": accepted_total,
        "seconds": elapsed,
        "latencies_ms": [round(x * 1000, 3) for x in latencies],
    }


def drive(
    port: int, path: str, headers: dict[str, str], *, prefix: str, warmup: float, duration: float
) -> dict[str, Any]:
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "path": path,
        "headers": headers,
        "prefix": prefix,
        "concurrency": CONCURRENCY,
        "warmup": warmup,
        "duration": duration,
    }
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_callbacks", "--load"],
        input=json.dumps(spec).encode(),
        capture_output=True,
        check=True,
        cwd=ROOT,
        timeout=duration + warmup + 120,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# --- set-up and runs ------------------------------------------------------------------------------------


def _prepare(tmp: Path, database_url: str | None = None) -> tuple[dict[str, str], str, str]:
    """A migrated database (SQLite in ``tmp`` unless ``database_url``) with one enabled
    printing_partner connection: env, connection id, key."""
    from tovplus.db.migrate import upgrade
    from tovplus.runtime import build_runtime
    from tovplus.runtime.keyring import generate_key
    from tovplus.services import connections
    from tovplus.services.auth import UserCaller, create_user
    from tovplus.services.occasions import create_occasion
    from tovplus.settings import Settings

    env = {
        "TOVPLUS_ENVIRONMENT": "development",  # as deployed: start-up objects are frozen (gc)
        "TOVPLUS_DATA_DIR": str(tmp),
        "TOVPLUS_DATABASE_URL": database_url or f"sqlite:///{tmp / 'bench.db'}",
        "TOVPLUS_SECRET_KEYS": generate_key(),
        "TOVPLUS_ALLOW_PRIVATE_URLS": "true",
        "TOVPLUS_LOG_LEVEL": "WARNING",
        # the per-connection limit protects production; here one connection is the whole load
        "TOVPLUS_CALLBACK_RATE_PER_MINUTE": "1000000000",
    }
    settings = Settings(
        environment="test",
        data_dir=tmp,
        database_url=env["TOVPLUS_DATABASE_URL"],
        secret_keys=env["TOVPLUS_SECRET_KEYS"],
        queue_url="memory://",
        allow_private_urls=True,
    )
    rt = build_runtime(settings)
    try:
        upgrade(rt.db.engine)
        with rt.db.write() as session:
            user = create_user(session, "bench@example.com", "planner")
            caller = UserCaller(user.id, user.email, user.role)
            occasion_id = create_occasion(session, caller, "Bench wedding", date(2027, 6, 12)).id
        created = connections.create_connection(
            rt,
            caller,
            occasion_id,
            connections.ConnectionCreate(
                integration_key="printing_partner",
                config={"account_id": "acct-bench", "api_base_url": "https://printer.example.com/api"},
                secrets={"api_key": "pk_live_BENCHMARK0123456789"},
                state="enabled",
            ),
        )
    finally:
        rt.close()
    assert created.issued_key is not None
    return env, created.connection["id"], created.issued_key


def _uvicorn(factory: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"bench.bench_callbacks:{factory}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
        *uvicorn_stack_args(),
    ]


def _stored(db_file: Path, sql: str) -> int:
    conn = sqlite3.connect(db_file)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def _pool(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several rounds: summed requests over summed time, percentiles of all latencies."""
    latencies = sorted(x for r in runs for x in r.pop("latencies_ms"))
    count = len(latencies)
    statuses: dict[str, int] = {}
    for r in runs:
        for status, n in r["statuses"].items():
            statuses[str(status)] = statuses.get(str(status), 0) + n
    pooled: dict[str, Any] = {
        "requests": count,
        "rps": count / sum(r["seconds"] for r in runs),
        "p50_ms": latencies[count // 2] if count else 0.0,
        "p99_ms": latencies[min(count - 1, int(count * 0.99))] if count else 0.0,
        "statuses": statuses,
        "errors": sum(r["errors"] for r in runs),
        "accepted_total": sum(r["accepted_total"] for r in runs),
        "rounds": [{k: v for k, v in r.items() if k not in ("statuses",)} for r in runs],
    }
    for key in ("stored", "records", "activity"):
        if all(key in r for r in runs):
            pooled[key] = sum(r[key] for r in runs)
    if all("writer" in r for r in runs):
        batches = sum(r["writer"]["batches"] for r in runs)
        jobs = sum(r["writer"]["jobs"] for r in runs)
        pooled["writer"] = {
            "batches": batches,
            "jobs": jobs,
            "mean_batch": jobs / batches if batches else 0.0,
            "largest": max(r["writer"]["largest"] for r in runs),
        }
    return pooled


def _run_bare(tmp: Path, tag: str, warmup: float, duration: float) -> dict[str, Any]:
    port = free_port()
    with server(
        _uvicorn("bare_app", port),
        env={},
        ready_url=f"http://127.0.0.1:{port}/healthz",
        timeout=STARTUP_SECONDS,
    ):
        return drive(port, PATH.format(connection_id="c"), {}, prefix=tag, warmup=warmup, duration=duration)


def _run_naive(tmp: Path, tag: str, warmup: float, duration: float) -> dict[str, Any]:
    naive_db = tmp / "naive.db"
    with sqlite3.connect(naive_db) as c:
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("CREATE TABLE deliveries (id INTEGER PRIMARY KEY, delivery_id TEXT UNIQUE, body BLOB)")
    port = free_port()
    with server(
        _uvicorn("naive_app", port),
        env={"BENCH_NAIVE_DB": str(naive_db), "TOVPLUS_SQLITE_SYNCHRONOUS": "NORMAL"},
        ready_url=f"http://127.0.0.1:{port}/healthz",
        timeout=STARTUP_SECONDS,
    ):
        result = drive(port, PATH.format(connection_id="c"), {}, prefix=tag, warmup=warmup, duration=duration)
    result["stored"] = _stored(naive_db, "SELECT count(*) FROM deliveries")
    return result


def _run_callbacks(tmp: Path, tag: str, warmup: float, duration: float, synchronous: str) -> dict[str, Any]:
    env, connection_id, key = _prepare(tmp)
    stats_file = tmp / "writer.json"
    env |= {"TOVPLUS_SQLITE_SYNCHRONOUS": synchronous, "BENCH_WRITER_STATS": str(stats_file)}
    port = free_port()
    with server(
        _uvicorn("real_app", port),
        env=env,
        ready_url=f"http://127.0.0.1:{port}/healthz",
        timeout=STARTUP_SECONDS,
    ):
        result = drive(
            port,
            PATH.format(connection_id=connection_id),
            {"x-tov-integration-secret": key},
            prefix=tag,
            warmup=warmup,
            duration=duration,
        )
        time.sleep(0.7)  # let the stats thread write its last figures
    db = tmp / "bench.db"
    result["stored"] = _stored(db, "SELECT count(*) FROM callback_deliveries")
    result["records"] = _stored(db, "SELECT count(*) FROM synced_records")
    result["activity"] = _stored(db, "SELECT count(*) FROM activity WHERE kind = 'callback.received'")
    if stats_file.exists():
        result["writer"] = json.loads(stats_file.read_text())
    return result


def _run_callbacks_postgres(tmp: Path, tag: str, warmup: float, duration: float) -> dict[str, Any]:
    """The real app on a fresh PostgreSQL database (the fleet's path): one API process, group commit."""
    from sqlalchemy import create_engine, text

    from bench.bench_scheduler import _drop_postgres, _postgres_database

    name, url = _postgres_database()
    try:
        env, connection_id, key = _prepare(tmp, url)
        port = free_port()
        with server(
            _uvicorn("real_app", port),
            env=env,
            ready_url=f"http://127.0.0.1:{port}/healthz",
            timeout=STARTUP_SECONDS,
        ):
            result = drive(
                port,
                PATH.format(connection_id=connection_id),
                {"x-tov-integration-secret": key},
                prefix=tag,
                warmup=warmup,
                duration=duration,
            )
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as conn:
            result["stored"] = int(
                conn.execute(text("SELECT count(*) FROM callback_deliveries")).scalar_one()
            )
        engine.dispose()
        return result
    finally:
        _drop_postgres(name)


def measure(quick: bool = False) -> dict[str, dict[str, Any]]:
    """Run the four servers under load, interleaved in rounds; return pooled results by name.

    Interleaving (bare, naive, callbacks NORMAL, callbacks FULL, then again) keeps a change
    in the machine's background load from favouring one server over another.
    """
    rounds, warmup, duration = (1, 1.0, 3.0) if quick else (2, 1.5, 5.0)
    runs: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="tovplus-bench-callbacks-") as tmpdir:
        for n in range(rounds):
            for name, run_one in (
                ("bare", _run_bare),
                ("naive", _run_naive),
                ("callbacks_normal", lambda t, g, w, d: _run_callbacks(t, g, w, d, "NORMAL")),
                ("callbacks_full", lambda t, g, w, d: _run_callbacks(t, g, w, d, "FULL")),
                ("callbacks_postgres", _run_callbacks_postgres),
            ):
                tmp = Path(tmpdir) / f"{name}-{n}"
                tmp.mkdir()
                runs.setdefault(name, []).append(run_one(tmp, f"{name[0]}{n}", warmup, duration))
    return {name: _pool(r) for name, r in runs.items()}


def figures(results: dict[str, dict[str, Any]]) -> list[Figure]:
    bare = results["bare"]
    out: list[Figure] = []

    def rps(name: str, key: str, target: float | None, p99_target: bool = False) -> None:
        r = results[key]
        ratio = r["rps"] / bare["rps"] if bare["rps"] else 0.0
        out.append(
            Figure(
                name=name,
                value=r["rps"],
                unit="req/s",
                baseline_name="bare async route (parse only)",
                baseline=bare["rps"],
                target=f">= {target}x bare" if target else "",
                passed=(ratio >= target) if target else None,
            )
        )
        out.append(
            Figure(
                name=f"{name}: p50",
                value=r["p50_ms"],
                unit="ms",
                baseline_name="bare p50",
                baseline=bare["p50_ms"],
            )
        )
        out.append(
            Figure(
                name=f"{name}: p99",
                value=r["p99_ms"],
                unit="ms",
                baseline_name="bare p99",
                baseline=bare["p99_ms"],
                target=f"< {TARGET_P99_MS:.0f} ms" if p99_target else "",
                passed=(r["p99_ms"] < TARGET_P99_MS) if p99_target else None,
            )
        )

    rps(f"callbacks, SQLite synchronous=NORMAL, {CONCURRENCY} conns", "callbacks_normal", TARGET_RATIO, True)
    rps(f"callbacks, SQLite synchronous=FULL, {CONCURRENCY} conns", "callbacks_full", None)
    rps(
        f"callbacks, PostgreSQL, one API process, {CONCURRENCY} conns",
        "callbacks_postgres",
        TARGET_RATIO_POSTGRES,
    )
    rps(f"naive route, 1 commit/request, {CONCURRENCY} conns", "naive", None)
    for key in ("callbacks_normal", "callbacks_full", "callbacks_postgres"):
        r = results[key]
        answered = r["accepted_total"]
        out.append(
            Figure(
                name=f"{key}: deliveries stored per 2xx answered",
                value=r["stored"] / answered if answered else 0.0,
                unit="ratio",
                target="= 1 (2xx means committed), no non-2xx",
                passed=answered > 0
                and r["stored"] == answered
                and set(r["statuses"]) == {"202"}
                and not r["errors"],
            )
        )
    return out


def run(quick: bool = False) -> list[Figure]:
    results = measure(quick)
    print(json.dumps(results, indent=2), file=sys.stderr)
    return figures(results)


if __name__ == "__main__":
    if "--load" in sys.argv:
        print(json.dumps(asyncio.run(_load(json.load(sys.stdin)))))
    else:
        for figure in run(quick="--quick" in sys.argv):
            print(figure)
