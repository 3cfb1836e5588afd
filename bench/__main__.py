"""Run every benchmark module and print one table (``make bench``)."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import time
from pathlib import Path

from bench import Figure


def _modules(only: list[str]) -> list[str]:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    return [n for n in names if not only or any(o in n for o in only)]


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("only", nargs="*", help="run only modules whose name contains one of these")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    figures: list[tuple[str, Figure]] = []
    failures = 0
    for name in _modules(args.only):
        started = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(f"bench.{name}")
        try:
            for figure in module.run(quick=args.quick):
                figures.append((name, figure))
        except Exception as exc:  # report and go on with the other benchmarks
            failures += 1
            print(f"  {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(f"  done in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    print(f"\nmachine: {os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
    header = ["figure", "value", "unit", "baseline (same run)", "baseline value", "ratio", "target", "ok"]
    rows = [
        [
            f.name,
            _fmt(f.value),
            f.unit,
            f.baseline_name or "-",
            _fmt(f.baseline),
            _fmt(f.ratio),
            f.target or "-",
            {True: "yes", False: "NO", None: "-"}[f.passed],
        ]
        for _, f in figures
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    missed = sum(1 for _, f in figures if f.passed is False)
    print(f"\n{len(figures)} figures, {missed} below target, {failures} benchmark modules failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
