"""CPU per list request, in-process: the real app's ASGI callable driven directly (no sockets).

Not part of ``make bench`` (its name does not start with ``bench_``): the profile behind
docs/benchmarks.md "Lists (issue 20)". Seeds the same database as ``bench_lists`` (kept in
``DIR`` when given, with its key, so later runs skip the seeding), then sends each list request
``N`` times, one at a time, and prints the process's CPU time per request (every thread's, so the
thread-pool hop is counted; background load inflates it far less than wall time), beside the
bare route's (``bench._bare``) measured the same way.

``PYTHONPATH=src:. python -m bench.lists_cpu [N] [DIR]``; run it under ``py-spy record`` for the profile.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import bench_lists
from bench._harness import asgi_scope


def _scope(path: str, query: str, token: str | None) -> dict[str, Any]:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    return asgi_scope("GET", path, headers, query)


async def _call(app: Any, scope: dict[str, Any]) -> tuple[int, bytes]:
    status, body = 0, bytearray()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status, bytes(body)


async def _measure(app: Any, scope: dict[str, Any], n: int) -> dict[str, Any]:
    """CPU per request: the mean over ``n``, and the minimum and median of each request's own."""
    for _ in range(20):  # warm-up
        status, _body = await _call(app, scope)
    each: list[float] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        started = time.process_time()
        status, _body = await _call(app, scope)
        each.append(time.process_time() - started)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    each.sort()
    return {
        "status": status,
        "cpu_ms": round((cpu1 - cpu0) / n * 1e3, 3),
        "min_ms": round(each[0] * 1e3, 3),
        "median_ms": round(each[n // 2] * 1e3, 3),
        "wall_ms": round((wall1 - wall0) / n * 1e3, 3),
    }


def _prepare(root: Path) -> dict[str, str]:
    """The seeded database in ``root`` (seeded now unless it is there) and the env naming it."""
    meta = root / "meta.json"
    url = f"sqlite:///{root / 'big.db'}"
    if not meta.exists():
        root.mkdir(parents=True, exist_ok=True)
        planner, admin, occasion_id = bench_lists._seed(url, 10_000, 10, 50)
        meta.write_text(
            json.dumps({"key": bench_lists.KEY, "planner": planner, "admin": admin, "occasion": occasion_id})
        )
    info: dict[str, str] = json.loads(meta.read_text())
    from tovplus.db.migrate import upgrade
    from tovplus.db.session import Database

    db = Database(url)
    upgrade(db.engine)  # a database seeded by an older checkout gets the newer migrations
    db.dispose()
    os.environ.update(
        {
            "TOVPLUS_DATABASE_URL": url,
            "TOVPLUS_DATA_DIR": str(root),
            "TOVPLUS_SECRET_KEYS": info["key"],
            "TOVPLUS_LOG_LEVEL": "WARNING",
        }
    )
    return info


def main(n: int, root: Path) -> dict[str, Any]:
    info = _prepare(root)
    from bench._bare import app as bare
    from tovplus.app import create_app
    from tovplus.runtime import build_runtime
    from tovplus.settings import load_settings

    app = create_app(build_runtime(load_settings()))

    async def run() -> dict[str, Any]:
        async with app.router.lifespan_context(app):
            return {
                "bare": await _measure(bare, _scope("/bare", "", None), n),
                "planner": await _measure(
                    app, _scope(f"/v1/occasions/{info['occasion']}/integrations", "", info["planner"]), n
                ),
                "admin_first": await _measure(
                    app, _scope("/v1/admin/integrations", "limit=50", info["admin"]), n
                ),
                "admin_failing": await _measure(
                    app, _scope("/v1/admin/integrations", "health=failing&limit=50", info["admin"]), n
                ),
            }

    import uvloop

    return uvloop.run(run())


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    where = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.gettempdir()) / "tovplus-lists-cpu"
    print(json.dumps(main(count, where)))
