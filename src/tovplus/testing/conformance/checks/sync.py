"""The ``sync_errors`` and ``sync`` checks: sync against scripted partner failures, and against a
partner it succeeds with, keeping secrets out of errors, results and logs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from tovplus.errors import AdapterError, CredentialsRejected, DriftDetected, PartnerUnavailable
from tovplus.integrations.contract import RecordUpsert, SyncResult
from tovplus.integrations.redaction import MASK
from tovplus.testing.conformance.checks.common import Subject, dump, issue_text, record_problems
from tovplus.testing.fake_partner import Answer, FakePartner, Reply
from tovplus.testing.hooks import sync_context
from tovplus.testing.junk import shorten

_QUIET_LOGGERS = ("httpx", "httpcore", "hypothesis")
#: A transient failure may be retried this many times in all within one sync.
_TRANSIENT_MAX = 3


def _echo(status: int) -> Callable[[httpx.Request], Reply]:
    """An error answer whose body repeats the request's headers, as careless partners do."""

    def answer(request: httpx.Request) -> Reply:
        echoed = " ".join(f"{k}={v}" for k, v in request.headers.items())
        return Reply(status, {"error": f"HTTP {status}", "message": f"request was: {request.url} {echoed}"})

    return answer


def _not_json(request: httpx.Request) -> Reply:
    return Reply(200, text=f"<html>maintenance {request.url} {' '.join(request.headers.values())}</html>")


@dataclass(frozen=True, slots=True)
class Scenario:
    """One way a partner fails, and the typed errors a sync may answer it with."""

    name: str
    answer: Answer
    expected: tuple[type[BaseException], ...]
    result_allowed: bool = False
    max_requests: int | None = None
    #: An OAuth2 adapter's client refreshes once after a 401 and retries (the framework's retry).
    bearer_retry: bool = False


_ANY_TYPED = (CredentialsRejected, PartnerUnavailable, DriftDetected)
#: The partner failures ``sync_errors`` scripts, in the order they are tried.
SYNC_SCENARIOS: tuple[Scenario, ...] = (
    Scenario("HTTP 401", _echo(401), (CredentialsRejected,), max_requests=1, bearer_retry=True),
    Scenario("HTTP 403", _echo(403), (CredentialsRejected,), max_requests=1),
    Scenario("HTTP 500", _echo(500), (PartnerUnavailable,), max_requests=_TRANSIENT_MAX),
    Scenario("HTTP 502", _echo(502), (PartnerUnavailable,), max_requests=_TRANSIENT_MAX),
    Scenario("HTTP 503", _echo(503), (PartnerUnavailable,), max_requests=_TRANSIENT_MAX),
    Scenario("HTTP 504", _echo(504), (PartnerUnavailable,), max_requests=_TRANSIENT_MAX),
    Scenario("connect timeout", httpx.ConnectTimeout, (PartnerUnavailable,), max_requests=_TRANSIENT_MAX),
    Scenario("read timeout", httpx.ReadTimeout, (PartnerUnavailable,), max_requests=_TRANSIENT_MAX),
    Scenario(
        "connection refused",
        httpx.ConnectError("[Errno 111] Connection refused"),
        (PartnerUnavailable,),
        max_requests=_TRANSIENT_MAX,
    ),
    Scenario("HTTP 200 that is not JSON", _not_json, _ANY_TYPED, result_allowed=True),
    Scenario("HTTP 200 with an empty object", {}, _ANY_TYPED, result_allowed=True),
    Scenario("HTTP 200 with a list", [], _ANY_TYPED, result_allowed=True),
)


class _CapturedLogs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in _QUIET_LOGGERS:
            return
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.messages.append(text)


@contextmanager
def _capture_logs() -> Iterator[_CapturedLogs]:
    root = logging.getLogger()
    handler = _CapturedLogs()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _error_text(exc: BaseException) -> str:
    parts = [str(exc)]
    if isinstance(exc, AdapterError):
        parts.append(exc.message)
        parts.extend(issue_text(i) for i in exc.fields)
    if isinstance(exc, DriftDetected):
        parts.extend(exc.reasons)
    return "\n".join(parts)


def _result_text(result: SyncResult) -> str:
    records = [
        {"kind": r.kind, "external_id": r.external_id, "data": r.data}
        for r in result.records
        if isinstance(r, RecordUpsert)
    ]
    return dump({"records": records, "drift": list(result.drift), "summary": result.summary})


def _sync_result_problems(result: SyncResult, where: str) -> list[str]:
    problems = record_problems(result.records, where)
    if isinstance(result.drift, str) or not all(isinstance(d, str) and d for d in result.drift):
        problems.append(f"{where}: drift must be a list of non-empty strings")
    if not isinstance(result.summary, str) or len(result.summary) > 500:
        problems.append(f"{where}: summary must be a string of at most 500 characters")
    return problems


def _run_scenario(
    s: Subject, partner: FakePartner, last_success_at: datetime | None
) -> tuple[SyncResult | None, BaseException | None, list[str]]:
    """Run sync once; returns the result or the error, and the secret leaks it caused."""
    with _capture_logs() as logs, s.http(partner) as (http, token):
        ctx = sync_context(
            config=s.config,
            secrets=s.secrets,
            http=http,
            last_success_at=last_success_at,
            now=datetime.now(UTC),
            access_token=token,
        )
        try:
            result = s.adapter.sync(ctx)
        except Exception as exc:
            error: BaseException | None = exc
            result = None
        else:
            error = None
    leaks = []
    if error is not None:
        leaks += [f"its error message contains secret {k!r}" for k in s.leaks(_error_text(error))]
    if isinstance(result, SyncResult):
        leaks += [f"its result contains secret {k!r}" for k in s.leaks(_result_text(result))]
    for message in logs.messages:
        leaks += [f"it logged secret {k!r}" for k in s.leaks(message)]
    return result, error, sorted(set(leaks))


def _brief(error: BaseException, s: Subject) -> str:
    """The error's message, secrets masked first, then shortened."""
    text = str(error)
    for value in s.searchable_secrets:
        text = text.replace(value, MASK)
    return shorten(text, 160).strip("'\"")


def _scenario_problems(
    s: Subject,
    scenario: Scenario,
    partner: FakePartner,
    outcome: tuple[SyncResult | None, BaseException | None],
) -> list[str]:
    """What is wrong with how one sync answered one scripted failure."""
    result, error = outcome
    where = f"partner answers {scenario.name}:"
    problems: list[str] = []
    wanted = " or ".join(e.__name__ for e in scenario.expected)
    if error is not None:
        if not isinstance(error, scenario.expected):
            problems.append(
                f"{where} sync raised {type(error).__name__}: {_brief(error, s)} (expected {wanted})"
            )
        elif isinstance(error, AdapterError) and not error.message:
            problems.append(f"{where} {type(error).__name__} has no message for the health reasons")
    elif not scenario.result_allowed:
        problems.append(f"{where} sync returned {shorten(result)} (expected {wanted})")
    elif not isinstance(result, SyncResult):
        problems.append(f"{where} sync returned {shorten(result)}, not a SyncResult")
    else:
        problems += _sync_result_problems(result, where)
    limit = scenario.max_requests
    if limit is not None and scenario.bearer_retry and s.oauth:
        limit += 1
    if limit is not None and len(partner.requests) > limit:
        problems.append(
            f"{where} sync made {len(partner.requests)} requests; stop after "
            f"{limit} and leave retries to the framework"
        )
    return problems


def check_sync_errors(s: Subject) -> list[str]:
    """Each scripted partner failure must end in the expected typed error, quickly, leaking nothing."""
    problems: list[str] = []
    leaked: dict[str, list[str]] = {}
    for scenario in SYNC_SCENARIOS:
        partner = FakePartner.always(scenario.answer)
        result, error, leaks = _run_scenario(s, partner, None)
        if not partner.requests:
            problems.append(f"partner answers {scenario.name}: sync made no request through ctx.http")
            continue
        for leak in leaks:
            leaked.setdefault(leak, []).append(scenario.name)
        problems += _scenario_problems(s, scenario, partner, (result, error))
    for leak, names in leaked.items():
        problems.append(f"{leak} (when the partner answers {', '.join(names)})")
    return problems


def check_sync(s: Subject) -> list[str]:
    """A first and an incremental sync against the scripted partner succeed with sound results."""
    assert s.partner is not None
    problems: list[str] = []
    now = datetime.now(UTC)
    for label, since in (("first sync", None), ("incremental sync", now - timedelta(hours=1))):
        partner = s.partner()
        result, error, leaks = _run_scenario(s, partner, since)
        where = f"{label}:"
        problems += [f"{where} {leak}" for leak in leaks]
        if error is not None:
            hint = ""
            if partner.unmatched:
                paths = ", ".join(sorted({f"{r.method} {r.url.path}" for r in partner.unmatched}))
                hint = f" (requests no route answered: {paths})"
            problems.append(f"{where} sync raised {type(error).__name__}: {_brief(error, s)}{hint}")
            continue
        if not isinstance(result, SyncResult):
            problems.append(f"{where} sync returned {shorten(result)}, not a SyncResult")
            continue
        problems += _sync_result_problems(result, where)
        if not partner.requests:
            problems.append(f"{where} sync made no request through ctx.http")
    return problems
