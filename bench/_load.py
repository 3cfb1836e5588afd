"""A small closed-loop load generator, run as its own process by ``bench._harness.drive``.

Reads a JSON spec on stdin, prints a JSON result. Latencies are per request, measured
with ``perf_counter`` around each awaited request on a keep-alive connection.

Spec: ``url``, ``headers``, ``concurrency``, ``requests``, ``method``; optionally ``body`` (text
sent as ``application/json`` with every request) and ``unique_header`` (a header name, e.g.
``x-tov-delivery-id``, given a value of its own on every request, warm-up included:
``<unique_prefix>-<n>``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time

import httpx


async def _main(spec: dict[str, object]) -> dict[str, float | int]:
    total = int(spec["requests"])  # type: ignore[call-overload]
    concurrency = int(spec["concurrency"])  # type: ignore[call-overload]
    latencies: list[float] = []
    errors = 0
    remaining = total
    body = spec.get("body")
    content = str(body).encode() if body is not None else None
    unique_header = spec.get("unique_header")
    prefix = str(spec.get("unique_prefix") or "load")
    sequence = itertools.count()
    extra = {"content-type": "application/json"} if content is not None else {}

    def headers() -> dict[str, str] | None:
        if unique_header is None:
            return extra or None
        return {**extra, str(unique_header): f"{prefix}-{next(sequence)}"}

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=spec["headers"], limits=limits, timeout=30) as client:  # type: ignore[arg-type]

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                response = await client.request(
                    str(spec["method"]), str(spec["url"]), content=content, headers=headers()
                )
                latencies.append(time.perf_counter() - started)
                if response.status_code >= 400:
                    errors += 1

        # warm-up: one request per connection, not measured
        await asyncio.gather(
            *(
                client.request(str(spec["method"]), str(spec["url"]), content=content, headers=headers())
                for _ in range(concurrency)
            )
        )
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": errors,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_main(json.load(sys.stdin)))))
