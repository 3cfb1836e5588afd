"""``docs/benchmarks/sync-latency.png``: sync throughput against partner delay (matplotlib, dev only)."""

from __future__ import annotations

import sys
from pathlib import Path

from bench._harness import ROOT

PLOT = ROOT / "docs" / "benchmarks" / "sync-latency.png"


def write_sync_latency_plot(m: dict[str, object], path: Path = PLOT) -> Path | None:
    """Throughput at each delay for the embedded process and two PostgreSQL workers, with the ideal
    line (each one's no-delay figure: latency fully hidden). ``None`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (a dev dependency): no plot written", file=sys.stderr)
        return None
    embedded: dict[int, float] = m["embedded"]  # type: ignore[assignment]
    postgres: dict[int, float] = m["postgres_two_workers"]  # type: ignore[assignment]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, series, colour in (
        ("one embedded process (SQLite)", embedded, "tab:blue"),
        ("two tovplus worker processes (PostgreSQL)", postgres, "tab:orange"),
    ):
        delays = sorted(series)
        ax.plot(delays, [series[d] for d in delays], marker="o", color=colour, label=label)
        if 0 in series:
            ax.plot(
                delays,
                [series[0]] * len(delays),
                linestyle="--",
                color=colour,
                alpha=0.6,
                label=f"ideal: {label.split(' (')[0]}, latency hidden",
            )
    ax.set_xlabel("partner delay per request (ms)")
    ax.set_ylabel("syncs per second")
    ax.set_title("Sync throughput against partner latency (make bench)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
