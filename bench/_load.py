"""A small closed-loop load generator, run as its own process by ``bench._harness.drive``.

Reads a JSON spec on stdin, prints a JSON result. Latencies are per request, measured
with ``perf_counter`` around each awaited request on a keep-alive connection.
"""

from __future__ import annotations

import asyncio
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
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=spec["headers"], limits=limits, timeout=30) as client:  # type: ignore[arg-type]

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                response = await client.request(str(spec["method"]), str(spec["url"]))
                latencies.append(time.perf_counter() - started)
                if response.status_code >= 400:
                    errors += 1

        # warm-up: one request per connection, not measured
        await asyncio.gather(
            *(client.request(str(spec["method"]), str(spec["url"])) for _ in range(concurrency))
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
