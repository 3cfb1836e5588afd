"""Run the checks on one adapter: :func:`check_adapter` reports, :func:`assert_conforms` asserts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tovplus.integrations.contract import Adapter
from tovplus.testing.conformance.checks import (
    Subject,
    check_actions,
    check_callbacks,
    check_declarations,
    check_leaks,
    check_secrets,
    check_sync,
    check_sync_errors,
    check_validation,
)
from tovplus.testing.conformance.report import CHECKS, TITLES, CheckResult, ConformanceReport, tidy
from tovplus.testing.conformance.samples import (
    NOT_GIVEN,
    SampleError,
    derive_sample_config,
    derive_sample_secrets,
)
from tovplus.testing.fake_partner import FakePartner
from tovplus.testing.hooks import instance_of

#: How many generated inputs each property-based check tries by default.
DEFAULT_EXAMPLES = 60

#: Check name -> the function that returns its problems.
RUNNERS: dict[str, Callable[[Subject], list[str]]] = {
    "declarations": check_declarations,
    "secrets": check_secrets,
    "validation": check_validation,
    "callbacks": check_callbacks,
    "sync_errors": check_sync_errors,
    "sync": check_sync,
    "actions": check_actions,
    "leaks": check_leaks,
}


def _skip_reason(name: str, s: Subject) -> str | None:
    a = s.adapter
    if name == "callbacks" and not a.supports_inbound_callbacks:
        return "the adapter does not accept callbacks"
    if name in ("sync_errors", "sync") and not a.supports_background_sync:
        return "the adapter does not sync in the background"
    if name == "actions" and not a.actions:
        return "the adapter declares no actions"
    if name == "sync" and s.partner is None:
        return "no scripted partner given"
    if name == "leaks" and not (
        a.supports_background_sync or a.supports_credential_check or a.actions or a.supports_inbound_callbacks
    ):
        return "no hook of the adapter gets credentials or payloads"
    return None


def _created(adapter: Adapter | type[Adapter], key: str) -> Adapter | ConformanceReport:
    """The adapter instance, or a failed report when it cannot even be created."""
    try:
        instance = instance_of(adapter)
        if not isinstance(instance, Adapter):
            raise TypeError(f"{adapter!r} is not a tovplus Adapter")
    except Exception as exc:
        problem = f"the adapter could not be created: {type(exc).__name__}: {exc}"
        return ConformanceReport(key, (CheckResult("declarations", TITLES["declarations"], (problem,)),))
    return instance


def _unsound(key: str, declared: list[str], wanted: set[str]) -> ConformanceReport:
    """Nothing else can be trusted (or even run) while the declarations are unsound."""
    results = [CheckResult("declarations", TITLES["declarations"], tuple(declared))]
    results += [
        CheckResult(n, t, skipped="the declarations are not sound")
        for n, t in CHECKS
        if n != "declarations" and n in wanted
    ]
    return ConformanceReport(key, tuple(results))


def _no_samples(key: str, error: SampleError, wanted: set[str]) -> ConformanceReport:
    problem = f"{error} (pass sample_config / sample_secrets)"
    results = [CheckResult("declarations", TITLES["declarations"])]
    results += [CheckResult(n, t, (problem,)) for n, t in CHECKS if n != "declarations" and n in wanted]
    return ConformanceReport(key, tuple(results))


def _factory(partner: FakePartner | Callable[[], FakePartner] | None) -> Callable[[], FakePartner] | None:
    if not isinstance(partner, FakePartner):
        return partner
    given = partner

    def factory() -> FakePartner:
        return given

    return factory


def _run_checks(subject: Subject, wanted: set[str]) -> list[CheckResult]:
    results = []
    for name, title in CHECKS:
        if name not in wanted:
            continue
        if name == "declarations":
            results.append(CheckResult(name, title))
            continue
        reason = _skip_reason(name, subject)
        if reason:
            results.append(CheckResult(name, title, skipped=reason))
            continue
        try:
            found = RUNNERS[name](subject)
        except Exception as exc:  # a bug in a check must still give a readable report
            found = [f"the check itself failed: {type(exc).__name__}: {exc}"]
        problems = tidy(found, subject.searchable_secrets)
        results.append(CheckResult(name, title, problems, notes=tuple(subject.notes.get(name, ()))))
    return results


def check_adapter(
    adapter: Adapter | type[Adapter],
    *,
    config: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    callback: Any = NOT_GIVEN,
    partner: FakePartner | Callable[[], FakePartner] | None = None,
    examples: int = DEFAULT_EXAMPLES,
    only: Iterable[str] | None = None,
) -> ConformanceReport:
    """Run the conformance checks on one adapter and return the report (it never raises).

    ``config``/``secrets``: a valid sample connection (derived from the field declarations when
    omitted). ``callback``: a payload ``map_callback`` accepts. ``partner``: a scripted
    :class:`FakePartner` (or a factory of fresh ones) that a sync succeeds against.
    ``examples`` bounds each property-based check; ``only`` picks checks by name.
    """
    wanted = set(only) if only is not None else set(RUNNERS)
    unknown = wanted - set(RUNNERS)
    if unknown:
        raise ValueError(f"unknown checks: {', '.join(sorted(unknown))}")
    key = str(getattr(adapter, "integration_key", getattr(adapter, "__name__", repr(adapter))))
    instance = _created(adapter, key)
    if isinstance(instance, ConformanceReport):
        return instance
    declared = check_declarations(Subject(instance, {}, {}, NOT_GIVEN, None, examples))  # no samples needed
    if declared:
        return _unsound(key, declared, wanted)
    try:
        sample_config = dict(config) if config is not None else derive_sample_config(instance)
        sample_secrets = dict(secrets) if secrets is not None else derive_sample_secrets(instance)
    except SampleError as exc:
        return _no_samples(key, exc, wanted)
    subject = Subject(instance, sample_config, sample_secrets, callback, _factory(partner), examples)
    if not subject.searchable_secrets and instance.secret_fields:
        subject.note("secrets", "the sample secrets are too short to search for in outputs")
    return ConformanceReport(key, tuple(_run_checks(subject, wanted)))


def assert_conforms(
    adapter: Adapter | type[Adapter],
    *,
    config: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    callback: Any = NOT_GIVEN,
    partner: FakePartner | Callable[[], FakePartner] | None = None,
    examples: int = DEFAULT_EXAMPLES,
) -> ConformanceReport:
    """Run every check; raise ``AssertionError`` with the readable report if any fails."""
    report = check_adapter(
        adapter, config=config, secrets=secrets, callback=callback, partner=partner, examples=examples
    )
    if not report.ok:
        raise AssertionError(report.format())
    return report
