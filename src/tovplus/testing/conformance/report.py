"""What the conformance suite reports: one :class:`CheckResult` per check, in a :class:`ConformanceReport`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tovplus.integrations.redaction import MASK

#: At most this many problems are listed per check.
MAX_PROBLEMS_SHOWN = 12

#: The checks, in the order they run: ``(name, title)``.
CHECKS: tuple[tuple[str, str], ...] = (
    ("declarations", "declarations are consistent"),
    ("secrets", "secret fields stay out of every public view"),
    ("validation", "validation returns field errors and never raises"),
    ("callbacks", "callback mapping rejects junk with field errors"),
    ("sync_errors", "sync maps partner errors to the framework's typed errors"),
    ("sync", "sync against the scripted partner"),
    ("actions", "actions map partner errors to typed errors and leak no secret"),
    ("leaks", "no token or secret is logged, returned, raised or kept"),
)
#: Check name -> title.
TITLES = dict(CHECKS)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check: passed, failed with ``problems``, or ``skipped`` (with the reason)."""

    name: str
    title: str
    problems: tuple[str, ...] = ()
    skipped: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True when the check found no problem (a skipped check passes)."""
        return not self.problems

    def format(self) -> str:
        """The result as report lines: a head line, then its problems and notes."""
        if self.skipped:
            head = f"  -  {self.title}: skipped ({self.skipped})"
        else:
            head = f"  {'ok' if self.passed else 'FAIL'}  {self.title}"
        lines = [head]
        lines += [f"        - {p}" for p in self.problems]
        lines += [f"        note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class ConformanceReport:
    """Every check's result for one adapter; ``ok`` when none failed."""

    integration_key: str
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The results of the checks that failed."""
        return tuple(r for r in self.results if not r.passed)

    def result(self, name: str) -> CheckResult:
        """The result of the check called ``name``."""
        return next(r for r in self.results if r.name == name)

    def format(self) -> str:
        """The readable report: the verdict, then one block per check."""
        failed = len(self.failures)
        verdict = "conforms" if self.ok else f"does NOT conform ({failed} check{'s' * (failed != 1)} failed)"
        return "\n".join(
            [f"adapter {self.integration_key!r}: {verdict}", *(r.format() for r in self.results)]
        )


def tidy(problems: Iterable[str], secrets: Sequence[str]) -> tuple[str, ...]:
    """De-duplicate and cap the problems, and mask the sample secrets (reports end up in CI logs)."""
    unique = list(dict.fromkeys(problems))
    out = []
    for problem in unique[:MAX_PROBLEMS_SHOWN]:
        for value in secrets:
            problem = problem.replace(value, MASK)
        out.append(problem)
    if len(unique) > MAX_PROBLEMS_SHOWN:
        out.append(f"... and {len(unique) - MAX_PROBLEMS_SHOWN} more")
    return tuple(out)
