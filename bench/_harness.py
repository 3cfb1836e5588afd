"""Shared pieces of the benchmarks: free ports, server processes, a load generator in a second process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from tovplus.db.ids import new_id
from tovplus.db.models import Occasion, User
from tovplus.runtime import Runtime

ROOT = Path(__file__).resolve().parent.parent


def uvicorn_stack_args() -> list[str]:
    """``--loop``/``--http`` for a ``python -m uvicorn`` command line: the same stack as
    ``tovplus serve`` / ``tovplus api`` (:func:`tovplus.cli.server_stack`), so bare routes and the
    product are measured on one server stack."""
    from tovplus.cli import server_stack

    stack = server_stack()
    return ["--loop", stack["loop"], "--http", stack["http"]]


def bench_occasion(rt: Runtime) -> tuple[str, str]:
    """A planner and one occasion of theirs, inserted directly; ``(user_id, occasion_id)``."""
    user_id, occasion_id = new_id("usr"), new_id("occ")
    with rt.db.write() as session:
        session.execute(insert(User).values(id=user_id, email=f"{user_id}@bench.test", role="planner"))
        session.execute(
            insert(Occasion).values(
                id=occasion_id, name="Bench", starts_on=date(2027, 6, 12), created_by=user_id
            )
        )
    return user_id, occasion_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@contextmanager
def server(
    args: list[str], *, env: Mapping[str, str], ready_url: str, timeout: float = 60
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process and yield it once ``ready_url`` answers 200; stop it afterwards."""
    proc = subprocess.Popen(
        args,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"{args[0]} exited early: {err[-2000:]}")
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{ready_url} did not answer within {timeout}s")
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def drive(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    concurrency: int = 4,
    requests: int = 400,
    method: str = "GET",
    body: str | None = None,
    unique_header: str | None = None,
    unique_prefix: str = "load",
) -> Load:
    """Send ``requests`` requests from a second process and return throughput and latency.

    ``body`` is sent as JSON with every request; ``unique_header`` (e.g. ``x-tov-delivery-id``)
    gets a value of its own on every request (``<unique_prefix>-<n>``)."""
    spec: dict[str, object] = {
        "url": url,
        "headers": dict(headers or {}),
        "concurrency": concurrency,
        "requests": requests,
        "method": method,
    }
    if body is not None:
        spec["body"] = body
    if unique_header is not None:
        spec["unique_header"] = unique_header
        spec["unique_prefix"] = unique_prefix
    out = subprocess.run(
        [sys.executable, "-m", "bench._load"],
        input=json.dumps(spec).encode(),
        capture_output=True,
        check=True,
        cwd=ROOT,
    )
    return Load(**json.loads(out.stdout))


def asgi_scope(method: str, path: str, headers: list[tuple[bytes, bytes]], query: str = "") -> dict[str, Any]:
    """An HTTP request's ASGI scope, for the in-process CPU harnesses that call the app directly."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"bench"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
