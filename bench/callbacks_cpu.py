"""CPU per callback, in-process: the real app's ASGI callable driven directly (no sockets).

Not part of ``make bench`` (its name does not start with ``bench_``): the profile behind
docs/benchmarks.md "Issue 20, part 2". 32 concurrent requests on uvloop, each with its own
delivery id; prints the event loop's and the group-commit writer's CPU time per callback
(each thread's own clock, so background load inflates it far less than wall time).

``PYTHONPATH=src python -m bench.callbacks_cpu [N] [bare] [pg]`` (``pg``: a fresh PostgreSQL
database instead of SQLite); run it under ``py-spy record --threads`` for the profile.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._harness import asgi_scope
from bench.bench_callbacks import PATH, _prepare, bare_app, payload, real_app


def _scope(path: str, key: str, body: bytes, n: int) -> dict[str, Any]:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-tov-integration-secret", key.encode()),
        (b"x-tov-delivery-id", f"d-{n}".encode()),
    ]
    return asgi_scope("POST", path, headers)


def main(n: int, bare: bool, postgres: bool = False) -> dict[str, Any]:
    if not postgres:
        return _main(n, bare, None)
    from bench.bench_scheduler import _drop_postgres, _postgres_database

    name, url = _postgres_database()
    try:
        return _main(n, bare, url)
    finally:
        _drop_postgres(name)


def _main(n: int, bare: bool, database_url: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        env, connection_id, key = _prepare(Path(d), database_url)
        os.environ.update(env)
        from tovplus.integrations.redaction import scrubber

        scrubber.forget_all()  # like the bench's API process, which has handled no secret
        app = bare_app() if bare else real_app()
        path = PATH.format(connection_id=connection_id)
        statuses: dict[int, int] = {}

        async def one(i: int) -> None:
            body = payload(i)
            sent = False

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                await asyncio.Event().wait()
                raise AssertionError("unreachable")

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    statuses[message["status"]] = statuses.get(message["status"], 0) + 1

            await app(_scope(path, key, body, i), receive, send)

        async def worker(w: int, count: int) -> None:
            for i in range(count):
                await one(w * 1_000_000 + i)

        async def run() -> dict[str, Any]:
            async with app.router.lifespan_context(app):
                await asyncio.gather(*(worker(w, 50) for w in range(32)))  # warm-up
                writer = [t for t in threading.enumerate() if t.name == "tovplus-callbacks"]
                clock = time.pthread_getcpuclockid(writer[0].ident) if writer and writer[0].ident else None
                loop0, wall0 = time.thread_time(), time.perf_counter()
                w0 = time.clock_gettime(clock) if clock is not None else 0.0
                service = getattr(app.state, "callback_service", None)
                b0 = service.writer.stats.batches if service is not None else 0
                await asyncio.gather(*(worker(w + 500, n // 32) for w in range(32)))
                loop1, wall1 = time.thread_time(), time.perf_counter()
                w1 = time.clock_gettime(clock) if clock is not None else 0.0
                done = (n // 32) * 32
                batches = (service.writer.stats.batches - b0) if service is not None else 0
                return {
                    "loop_us": round((loop1 - loop0) / done * 1e6, 1),
                    "writer_us": round((w1 - w0) / done * 1e6, 1),
                    "wall_us": round((wall1 - wall0) / done * 1e6, 1),
                    "mean_batch": round(done / batches, 1) if batches else 0.0,
                    "statuses": statuses,
                }

        import uvloop

        return uvloop.run(run())


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a not in ("bare", "pg")]
    print(json.dumps(main(int(args[0]) if args else 6000, "bare" in sys.argv, "pg" in sys.argv)))
