"""The ``callbacks`` check: the sample payload maps soundly, and junk is rejected with field issues."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from tovplus.errors import CallbackRejected
from tovplus.integrations.contract import Adapter, CallbackResult
from tovplus.testing.conformance.checks.common import Subject, issue_problems, issue_text, record_problems
from tovplus.testing.conformance.samples import NOT_GIVEN
from tovplus.testing.hooks import callback_context
from tovplus.testing.junk import (
    JUNK_PAYLOADS,
    ProblemFound,
    explore,
    hypothesis_available,
    json_values,
    mappings_like,
    shorten,
)


def _every_event(_: str) -> bool:
    return True


def _callback_outcome(a: Adapter, payload: Any, belongs: Callable[[str], bool], config: Any) -> str | None:
    """None when the payload is accepted soundly or rejected with field issues; else the problem."""
    try:
        result = a.map_callback(payload, callback_context(config=config, events=belongs))
    except CallbackRejected as exc:
        if not exc.fields:
            return f"CallbackRejected without field issues for {shorten(payload)}"
        bad = issue_problems(exc.fields, "CallbackRejected")
        return f"{bad[0]} for {shorten(payload)}" if bad else None
    except Exception as exc:
        return f"raised {type(exc).__name__}: {exc} for {shorten(payload)} (raise CallbackRejected instead)"
    return _callback_result_problem(result, payload)


def _callback_result_problem(result: Any, payload: Any) -> str | None:
    if not isinstance(result, CallbackResult):
        return f"returned {shorten(result)} instead of a CallbackResult for {shorten(payload)}"
    bad = record_problems(result.records, "callback")
    if not isinstance(result.summary, str) or not result.summary or len(result.summary) > 500:
        bad.append("callback summary must be 1-500 characters")
    try:
        json.dumps(dict(result.details), allow_nan=False)
    except (TypeError, ValueError) as exc:
        bad.append(f"callback details are not plain JSON ({exc})")
    return f"{bad[0]} (payload {shorten(payload)})" if bad else None


def _sample_problems(s: Subject) -> list[str]:
    """The sample payload, when given, must map to a sound result."""
    if s.callback is NOT_GIVEN:
        s.note("callbacks", "no sample payload given: only rejection of junk was checked")
        return []
    try:
        result = s.adapter.map_callback(s.callback, callback_context(config=s.config, events=_every_event))
    except CallbackRejected as exc:
        listed = "; ".join(issue_text(i) for i in exc.fields)
        return [f"the sample payload was rejected ({listed}); give an acceptable sample_callback"]
    except Exception as exc:
        return [f"the sample payload raised {type(exc).__name__}: {exc}"]
    found = _callback_result_problem(result, s.callback)
    if found:
        return [found]
    if not result.records:
        s.note("callbacks", "the sample payload produced no records")
    return []


def _junk_problems(s: Subject) -> list[str]:
    """Every junk payload must be rejected with ``CallbackRejected`` carrying field issues."""
    problems: list[str] = []
    for payload in JUNK_PAYLOADS:
        try:
            s.adapter.map_callback(payload, callback_context(config=s.config, events=_every_event))
        except CallbackRejected as exc:
            if not exc.fields:
                problems.append(f"CallbackRejected without field issues for {shorten(payload)}")
            continue
        except Exception as exc:
            problems.append(f"raised {type(exc).__name__}: {exc} for {shorten(payload)}")
            continue
        problems.append(f"accepted the junk payload {shorten(payload)}")
    return problems


def _generated_problem(s: Subject) -> str | None:
    """The smallest problem Hypothesis finds with JSON values and mutations of the sample, or None."""
    from hypothesis import strategies as st

    sample = s.callback if isinstance(s.callback, Mapping) else {}
    strategy = st.tuples(
        st.one_of(json_values(), mappings_like(sample, list(sample))),
        st.booleans(),
    )

    def check(case: tuple[Any, bool]) -> None:
        payload, known = case
        found = _callback_outcome(s.adapter, payload, lambda _: known, s.config)
        if found:
            raise ProblemFound(found)

    return explore(strategy, check, examples=s.examples)


def check_callbacks(s: Subject) -> list[str]:
    """The sample maps soundly; fixed junk, then generated payloads, are rejected with field issues."""
    problems = _sample_problems(s) + _junk_problems(s)
    if problems:
        return problems
    if not hypothesis_available():
        s.note("callbacks", "hypothesis is not installed: only the fixed corpus of payloads was tried")
        return problems
    found = _generated_problem(s)
    if found:
        problems.append(found)
    return problems
