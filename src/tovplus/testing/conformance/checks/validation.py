"""The ``validation`` check: validation returns field errors and never raises, whatever the config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tovplus.errors import FieldIssue
from tovplus.integrations.auth import AuthorizationStatus
from tovplus.integrations.contract import Adapter, Scope, ScopeType, ValidationContext, validate_connection
from tovplus.testing.conformance.checks.common import Subject, issue_problems, issue_text
from tovplus.testing.hooks import OCCASION_ID, default_scope, run_validation
from tovplus.testing.junk import (
    AWKWARD_VALUES,
    ProblemFound,
    explore,
    hypothesis_available,
    mappings_like,
    shorten,
)


def _validation_scopes(a: Adapter) -> list[Scope]:
    scopes = [default_scope(a)]
    for kind in sorted(a.allowed_scopes):
        event = "evt_test" if kind is ScopeType.EVENT else None
        occasion = None if kind is ScopeType.PLATFORM else OCCASION_ID
        scopes.append(Scope(kind, occasion, event))
    return scopes


def _run_hooks(a: Adapter, config: Any, present: frozenset[str], scope: Scope) -> str | None:
    """Call validate() and warnings() directly; a problem description, or None."""
    ctx = ValidationContext(config=config, secrets_present=present, scope=scope, allow_private_urls=False)
    for hook in ("validate", "warnings"):
        try:
            issues = list(getattr(a, hook)(ctx))
        except Exception as exc:
            return f"{hook}() raised {type(exc).__name__}: {exc} for config {shorten(config)}"
        bad = issue_problems(issues, f"{hook}()")
        if bad:
            return f"{bad[0]} (config {shorten(config)})"
    result = validate_connection(a, ctx)
    if any(getattr(e, "code", None) == "validation_crashed" for e in result.errors):
        return f"validation crashed for config {shorten(config)}"
    return None


def _sample_problems(s: Subject) -> list[str]:
    """The sample must validate; an empty connection must report every required field."""
    a = s.adapter
    problems: list[str] = []
    granted = AuthorizationStatus.AUTHORIZED if s.oauth else None  # the sample as a connected one
    result = run_validation(a, config=s.config, secrets=s.secrets, authorization=granted)
    if result.errors:
        listed = "; ".join(issue_text(e) for e in result.errors)
        problems.append(f"the sample config does not validate ({listed}); give a valid sample_config")
    empty = run_validation(a, config={}, secrets={})
    required = {f"config.{f.key}" for f in a.config_fields if f.required} | {
        f"secrets.{f.key}" for f in a.secret_fields if f.required
    }
    reported = {e.field for e in empty.errors if isinstance(e, FieldIssue) and e.code == "required"}
    if s.oauth:
        required.add("authorization")
    for path in sorted(required - reported):
        problems.append(f"an empty connection does not report {path} as required")
    if any(getattr(e, "code", None) == "validation_crashed" for e in empty.errors):
        problems.append("validation crashed on an empty config")
    return problems


def _try_awkward_values(s: Subject, scope: Scope, problems: list[str]) -> None:
    """Put each awkward value in each config field (stopping at the first problem), then try awkward
    configs; what is found is appended to ``problems``."""
    a = s.adapter
    secret_keys = frozenset(f.key for f in a.secret_fields)
    for value in AWKWARD_VALUES:
        for f in a.config_fields:
            found = _run_hooks(a, {**s.config, f.key: value}, secret_keys, scope)
            if found:
                problems.append(found)
                break
        if problems:
            break
    for junk in AWKWARD_VALUES:
        if not isinstance(junk, Mapping):
            continue
        found = _run_hooks(a, junk, frozenset(), scope)
        if found:
            problems.append(found)


def _generated_problem(s: Subject, scopes: list[Scope]) -> str | None:
    """The smallest problem Hypothesis finds with configs near the sample, or None."""
    from hypothesis import strategies as st

    a = s.adapter
    keys = [f.key for f in a.config_fields]
    secret_keys = [f.key for f in a.secret_fields]
    strategy = st.tuples(
        mappings_like(s.config, keys),
        st.frozensets(st.sampled_from([*secret_keys, "not_declared"])),
        st.sampled_from(scopes),
    )

    def check(case: tuple[dict[str, Any], frozenset[str], Scope]) -> None:
        found = _run_hooks(a, *case)
        if found:
            raise ProblemFound(found)

    return explore(strategy, check, examples=s.examples)


def check_validation(s: Subject) -> list[str]:
    """The sample validates; awkward values, then generated configs, give field errors, never a crash."""
    problems = _sample_problems(s)
    scopes = _validation_scopes(s.adapter)
    _try_awkward_values(s, scopes[0], problems)
    if problems or not hypothesis_available():
        if not hypothesis_available():
            s.note("validation", "hypothesis is not installed: only the fixed corpus of bad values was tried")
        return problems
    found = _generated_problem(s, scopes)
    if found:
        problems.append(found)
    return problems
