"""Benchmarks: each ``bench_*.py`` module exposes ``run(quick: bool) -> list[Figure]``.

``python -m bench`` (``make bench``) runs them all and prints one table: each figure
beside the baseline measured in the same run, and the ratio.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured figure and the same-run baseline it is judged against."""

    name: str
    value: float
    unit: str
    baseline_name: str | None = None
    baseline: float | None = None
    target: str = ""
    #: True/False when the figure has a pass/fail target, None when it is informational.
    passed: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline  # type: ignore[operator]
