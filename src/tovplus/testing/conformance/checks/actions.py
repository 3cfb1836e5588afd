"""The ``actions`` check: every declared action maps partner failures to the typed errors, sends the
run's id as ``Idempotency-Key``, and carries no secret in its result, its errors or the logs."""

from __future__ import annotations

from typing import Any

import httpx

from tovplus.errors import AdapterError, CredentialsRejected, InvalidInput, PartnerUnavailable
from tovplus.integrations.actions import ActionResult, ActionSpec, GuestData
from tovplus.testing.actions import RUN_ID, action_context
from tovplus.testing.conformance.checks.common import Subject, dump
from tovplus.testing.conformance.checks.sync import _capture_logs, _error_text
from tovplus.testing.conformance.samples import sample_value
from tovplus.testing.fake_partner import Answer, FakePartner, Reply
from tovplus.testing.junk import shorten

#: ``(scenario, what the partner answers, the typed errors allowed; None: success expected)``.
_SCENARIOS: tuple[tuple[str, Answer, tuple[type[BaseException], ...] | None], ...] = (
    ("HTTP 200", Reply(200, {}), None),
    ("HTTP 401", Reply(401, {"error": "unauthorized"}), (CredentialsRejected,)),
    ("HTTP 403", Reply(403, {"error": "forbidden"}), (CredentialsRejected,)),
    ("HTTP 500", Reply(500, {"error": "internal"}), (PartnerUnavailable,)),
    ("HTTP 503", Reply(503, {"error": "unavailable"}), (PartnerUnavailable,)),
    ("read timeout", httpx.ReadTimeout, (PartnerUnavailable,)),
    ("connection refused", httpx.ConnectError("[Errno 111] Connection refused"), (PartnerUnavailable,)),
)
_GUESTS = [GuestData("gst_conformance1", "Ola Nordmann", "ola@example.com")]
#: A failing attempt is retried by the framework; the action itself stops after this many requests.
_MAX_REQUESTS = 3


def _sample_input(spec: ActionSpec) -> dict[str, Any]:
    """A valid input for the action, derived from its declared fields (as config samples are)."""
    values = {f.key: sample_value(f) for f in spec.input_fields if f.required}
    return spec.check_input(values, allow_private_urls=True)


def _attempt(
    s: Subject, spec: ActionSpec, answer: Answer
) -> tuple[Any, BaseException | None, FakePartner, list[str]]:
    partner = FakePartner.always(answer)
    with _capture_logs() as logs, s.http(partner) as (http, token):
        ctx = action_context(
            config=s.config,
            secrets=s.secrets,
            http=http,
            action_keys=s.adapter.action_keys,
            guests=_GUESTS,
            access_token=token,
        )
        try:
            result, error = s.adapter.perform(spec.key, _sample_input(spec), ctx), None
        except Exception as exc:
            result, error = None, exc
    texts = [_error_text(error)] if error is not None else []
    if isinstance(result, ActionResult):
        texts.append(dump({"summary": result.summary, "details": dict(result.details)}))
    leaks = sorted({k for text in [*texts, *logs.messages] for k in s.leaks(text)})
    return result, error, partner, leaks


def _problems(
    spec: ActionSpec, scenario: str, expected: Any, outcome: tuple[Any, Any, FakePartner], oauth: bool
) -> list[str]:
    result, error, partner = outcome
    where = f"action {spec.key!r}, partner answers {scenario}:"
    problems = []
    if expected is None:
        if error is not None:
            problems.append(f"{where} perform raised {type(error).__name__}: {shorten(str(error), 160)}")
        elif not isinstance(result, ActionResult):
            problems.append(f"{where} perform returned {shorten(result)}, not an ActionResult")
        for request in partner.requests:
            if request.headers.get("idempotency-key") != RUN_ID:
                problems.append(f"{where} {request.method} {request.url.path} did not send Idempotency-Key")
    elif error is None:
        problems.append(f"{where} perform returned {shorten(result)} (expected {expected[0].__name__})")
    elif not isinstance(error, expected):
        problems.append(f"{where} perform raised {type(error).__name__} (expected {expected[0].__name__})")
    elif isinstance(error, AdapterError) and not error.message:
        problems.append(f"{where} {type(error).__name__} has no message for the run's error")
    if len(partner.requests) > _MAX_REQUESTS + (1 if oauth and scenario == "HTTP 401" else 0):
        problems.append(f"{where} made {len(partner.requests)} requests; leave retries to the framework")
    return problems


def check_actions(s: Subject) -> list[str]:
    """Each declared action: typed errors for partner failures, the idempotency key, no secret out."""
    problems: list[str] = []
    for spec in s.adapter.actions:
        try:
            _sample_input(spec)
        except InvalidInput as exc:
            problems.append(f"action {spec.key!r}: no valid sample input can be derived ({exc.message})")
            continue
        for scenario, answer, expected in _SCENARIOS:
            result, error, partner, leaks = _attempt(s, spec, answer)
            problems += _problems(spec, scenario, expected, (result, error, partner), s.oauth)
            problems += [
                f"action {spec.key!r}, partner answers {scenario}: secret {k!r} got out" for k in leaks
            ]
    return problems
