"""The adapter conformance suite: what every adapter must get right, checked the same way for all.

Run it with one line, in a test module::

    class TestMyAdapter(AdapterConformance):
        adapter = MyAdapter

or from a plain test function, ``assert_conforms(MyAdapter)``, or from the shell,
``tovplus adapters check my_adapter``. Each check is also a function of
:func:`check_adapter`'s report, so a failure names the check and what went wrong.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from tovplus.errors import (
    AdapterError,
    CallbackRejected,
    CredentialsRejected,
    DriftDetected,
    FieldIssue,
    PartnerUnavailable,
)
from tovplus.integrations.contract import (
    Adapter,
    CallbackResult,
    Mode,
    RecordUpsert,
    Scope,
    ScopeType,
    SyncResult,
    ValidationContext,
    validate_connection,
)
from tovplus.integrations.fields import Field, FieldType
from tovplus.integrations.redaction import MASK, public_config
from tovplus.integrations.registry import declaration_problems
from tovplus.testing.junk import (
    AWKWARD_VALUES,
    JUNK_PAYLOADS,
    ProblemFound,
    explore,
    hypothesis_available,
    json_values,
    mappings_like,
    shorten,
)
from tovplus.testing.partner import (
    OCCASION_ID,
    Answer,
    FakePartner,
    Reply,
    callback_context,
    default_scope,
    run_validation,
    sync_context,
)

#: How many generated inputs each property-based check tries by default.
DEFAULT_EXAMPLES = 60
_FIELD_PREFIXES = ("config.", "secrets.", "scope.", "connection", "payload")
#: The contract's catalog ``Adapter`` object.
_DESCRIBED_KEYS = frozenset(
    {
        "integration_key",
        "name",
        "description",
        "category",
        "direction",
        "mode",
        "capabilities",
        "action_keys",
        "config_fields",
        "secret_fields",
        "supports_background_sync",
        "supports_inbound_callbacks",
    }
)
_PUBLIC_FIELD_KEYS = frozenset({"key", "label", "type", "required", "help", "choices"})
#: Values shorter than this are not searched for in outputs (they would match by chance).
_MIN_SEARCHABLE_SECRET = 6
_QUIET_LOGGERS = ("httpx", "httpcore", "hypothesis")
#: At most this many problems are listed per check.
MAX_PROBLEMS_SHOWN = 12


class SampleError(ValueError):
    """No valid sample could be derived from the declarations; give one explicitly."""


# --- the report ------------------------------------------------------------------------------


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
        return not self.problems

    def format(self) -> str:
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
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def result(self, name: str) -> CheckResult:
        return next(r for r in self.results if r.name == name)

    def format(self) -> str:
        failed = len(self.failures)
        verdict = "conforms" if self.ok else f"does NOT conform ({failed} check{'s' * (failed != 1)} failed)"
        return "\n".join(
            [f"adapter {self.integration_key!r}: {verdict}", *(r.format() for r in self.results)]
        )


#: The checks, in the order they run: ``(name, title)``.
CHECKS: tuple[tuple[str, str], ...] = (
    ("declarations", "declarations are consistent"),
    ("secrets", "secret fields stay out of every public view"),
    ("validation", "validation returns field errors and never raises"),
    ("callbacks", "callback mapping rejects junk with field errors"),
    ("sync_errors", "sync maps partner errors to the framework's typed errors"),
    ("sync", "sync against the scripted partner"),
)
_TITLES = dict(CHECKS)


# --- samples ----------------------------------------------------------------------------------


def _string_candidates(f: Field, *, secret: bool) -> Iterator[str]:
    if isinstance(f.default, str):
        yield f.default
    if f.type is FieldType.URL:
        yield "https://partner.example.com/api"
        return
    if secret:
        yield f"conformance-secret-{f.key}-7Hq2x9Lw"
        yield f"CONFORMANCE_{f.key.upper()}_7HQ2X9LW"
    yield "sample-value-1"
    yield "sample"
    yield "ABC123"
    yield "abc123"
    yield "a" * max(1, f.min_length or 1)


def _sample_value(f: Field, *, secret: bool) -> Any:
    """A value that passes ``f``'s declaration, derived from it alone."""
    if f.type is FieldType.BOOLEAN:
        return f.default if isinstance(f.default, bool) else False
    if f.type is FieldType.INTEGER:
        if isinstance(f.default, int) and not isinstance(f.default, bool):
            return f.default
        low = f.minimum if f.minimum is not None else 1
        return low if f.maximum is None else min(low, f.maximum)
    if f.type is FieldType.ENUM and f.choices:
        return f.default if f.default in f.choices else f.choices[0]
    for candidate in _string_candidates(f, secret=secret):
        if f.check(candidate, f.key, allow_private_urls=False) is None:
            return candidate
    if f.pattern and hypothesis_available():
        from hypothesis import find, settings
        from hypothesis import strategies as st

        try:
            return find(
                st.from_regex(f.pattern, fullmatch=True),
                lambda v: f.check(v, f.key, allow_private_urls=False) is None and len(v) >= 6,
                settings=settings(database=None, max_examples=500, derandomize=True),
            )
        except Exception:  # noqa: S110 - fall through to the clear error below
            pass
    raise SampleError(f"cannot derive a valid value for {f.key!r}; give it in the sample explicitly")


def derive_sample_config(adapter: Adapter | type[Adapter]) -> dict[str, Any]:
    """A config with every required field set to a value its declaration accepts."""
    instance = _instance(adapter)
    return {f.key: _sample_value(f, secret=False) for f in instance.config_fields if f.required}


def derive_sample_secrets(adapter: Adapter | type[Adapter]) -> dict[str, str]:
    """Recognizable secret values for every declared secret field (searched for in outputs)."""
    instance = _instance(adapter)
    return {f.key: str(_sample_value(f, secret=True)) for f in instance.secret_fields}


def _instance(adapter: Adapter | type[Adapter]) -> Adapter:
    return adapter() if isinstance(adapter, type) else adapter


# --- shared helpers ------------------------------------------------------------------------------


_NOT_GIVEN: Any = object()


@dataclass
class _Subject:
    adapter: Adapter
    config: dict[str, Any]
    secrets: dict[str, str]
    callback: Any
    partner: Callable[[], FakePartner] | None
    examples: int
    notes: dict[str, list[str]] = field(default_factory=dict)

    def note(self, check: str, text: str) -> None:
        self.notes.setdefault(check, []).append(text)

    @property
    def searchable_secrets(self) -> list[str]:
        return [v for v in self.secrets.values() if isinstance(v, str) and len(v) >= _MIN_SEARCHABLE_SECRET]

    def leaks(self, text: str) -> list[str]:
        """The secret fields whose value appears in ``text``."""
        return [k for k, v in self.secrets.items() if len(v) >= _MIN_SEARCHABLE_SECRET and v in text]


def _dump(value: Any) -> str:
    return json.dumps(value, default=repr, ensure_ascii=False)


def _issue_problems(issues: Iterable[Any], where: str) -> list[str]:
    problems = []
    for issue in issues:
        if not isinstance(issue, FieldIssue):
            problems.append(f"{where} produced {shorten(issue)}, not a FieldIssue")
            continue
        if not (issue.field and isinstance(issue.field, str) and issue.field.startswith(_FIELD_PREFIXES)):
            problems.append(
                f"{where} produced an issue for field {issue.field!r}: name it 'config.<key>', "
                "'secrets.<key>', 'scope...' or 'connection'"
            )
        if not issue.code or not issue.message:
            problems.append(f"{where} produced an issue without a code or a message: {issue!r}")
    return problems


def _issue_text(issue: Any) -> str:
    if isinstance(issue, FieldIssue):
        return f"{issue.field} {issue.code}: {issue.message}"
    return shorten(issue)


def record_problems(records: Any, where: str) -> list[str]:
    """What is wrong with records an adapter returned (types, lengths, JSON-ability)."""
    if isinstance(records, str | bytes) or not isinstance(records, Sequence):
        return [f"{where}: records must be a list of RecordUpsert, got {type(records).__name__}"]
    problems = []
    for record in records:
        if not isinstance(record, RecordUpsert):
            problems.append(f"{where}: {shorten(record)} is not a RecordUpsert")
            continue
        if not isinstance(record.kind, str) or not 0 < len(record.kind) <= 64:
            problems.append(f"{where}: record kind {record.kind!r} must be 1-64 characters")
        if not isinstance(record.external_id, str) or not 0 < len(record.external_id) <= 200:
            problems.append(f"{where}: external_id {shorten(record.external_id)} must be 1-200 characters")
        if not isinstance(record.data, Mapping):
            problems.append(f"{where}: record data must be a JSON object, got {type(record.data).__name__}")
        else:
            try:
                json.dumps(record.data, allow_nan=False)
            except (TypeError, ValueError) as exc:
                problems.append(f"{where}: record {record.external_id!r} data is not plain JSON ({exc})")
        stamp = record.updated_at
        if stamp is not None and (not isinstance(stamp, datetime) or stamp.tzinfo is None):
            problems.append(f"{where}: updated_at must be a timezone-aware datetime or None, got {stamp!r}")
    return problems


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


# --- the checks ------------------------------------------------------------------------------------


def _check_declarations(s: _Subject) -> list[str]:
    """The registry's own rules (``declaration_problems``) plus a few the registry cannot enforce."""
    a = s.adapter
    problems = list(declaration_problems(a))
    if problems:
        return problems  # describe() and the rest may not even work
    if a.mode is Mode.CALLBACK and not a.supports_inbound_callbacks:
        problems.append("mode 'callback' needs supports_inbound_callbacks")
    for f in a.secret_fields:
        if f.default is not None:
            problems.append(f"secret field {f.key!r} declares a default: secrets come from the planner only")
    try:
        described = json.loads(json.dumps(a.describe(), allow_nan=False))
    except Exception as exc:
        return [*problems, f"describe() failed or is not JSON: {type(exc).__name__}: {exc}"]
    missing = sorted(_DESCRIBED_KEYS - set(described))
    if missing:
        problems.append(f"describe() lacks {', '.join(missing)}")
    return problems


def _check_secrets(s: _Subject) -> list[str]:
    a = s.adapter
    problems: list[str] = []
    secret_keys = [f.key for f in a.secret_fields]
    described = a.describe()
    listed = [f.get("key") for f in described.get("config_fields", [])]
    for key in secret_keys:
        if key in listed:
            problems.append(f"describe() lists secret field {key!r} among the config fields")
    for entry in described.get("secret_fields", []):
        extra = sorted(set(entry) - _PUBLIC_FIELD_KEYS)
        if extra:
            problems.append(f"describe() shows {', '.join(extra)} of secret field {entry.get('key')!r}")
    text = _dump(described)
    for key in s.leaks(text):
        problems.append(f"describe() contains the value of secret {key!r}")
    # A planner who pastes a secret into the config must not see it echoed back.
    polluted = {**s.config, **s.secrets}
    shown = public_config(a, polluted)
    for key in secret_keys:
        if key in shown:
            problems.append(f"public_config() shows secret field {key!r}")
    for key in s.leaks(_dump(shown)):
        problems.append(f"public_config() shows the value of secret {key!r}")
    result = run_validation(a, config=polluted, secrets=s.secrets, allow_private_urls=True)
    for key in s.leaks(_dump([repr(i) for i in (*result.errors, *result.warnings)])):
        problems.append(f"a validation message contains the value of secret {key!r}")
    return problems


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
        bad = _issue_problems(issues, f"{hook}()")
        if bad:
            return f"{bad[0]} (config {shorten(config)})"
    result = validate_connection(a, ctx)
    if any(getattr(e, "code", None) == "validation_crashed" for e in result.errors):
        return f"validation crashed for config {shorten(config)}"
    return None


def _check_validation(s: _Subject) -> list[str]:
    a = s.adapter
    problems: list[str] = []
    result = run_validation(a, config=s.config, secrets=s.secrets)
    if result.errors:
        listed = "; ".join(_issue_text(e) for e in result.errors)
        problems.append(f"the sample config does not validate ({listed}); give a valid sample_config")
    empty = run_validation(a, config={}, secrets={})
    required = {f"config.{f.key}" for f in a.config_fields if f.required} | {
        f"secrets.{f.key}" for f in a.secret_fields if f.required
    }
    reported = {e.field for e in empty.errors if isinstance(e, FieldIssue) and e.code == "required"}
    for path in sorted(required - reported):
        problems.append(f"an empty connection does not report {path} as required")
    if any(getattr(e, "code", None) == "validation_crashed" for e in empty.errors):
        problems.append("validation crashed on an empty config")
    secret_keys = [f.key for f in a.secret_fields]
    scopes = _validation_scopes(a)
    for value in AWKWARD_VALUES:
        for f in a.config_fields:
            found = _run_hooks(a, {**s.config, f.key: value}, frozenset(secret_keys), scopes[0])
            if found:
                problems.append(found)
                break
        if problems:
            break
    for junk in AWKWARD_VALUES:
        if not isinstance(junk, Mapping):
            continue
        found = _run_hooks(a, junk, frozenset(), scopes[0])
        if found:
            problems.append(found)
    if problems or not hypothesis_available():
        if not hypothesis_available():
            s.note("validation", "hypothesis is not installed: only the fixed corpus of bad values was tried")
        return problems
    from hypothesis import strategies as st

    keys = [f.key for f in a.config_fields]
    strategy = st.tuples(
        mappings_like(s.config, keys),
        st.frozensets(st.sampled_from([*secret_keys, "not_declared"])),
        st.sampled_from(scopes),
    )

    def check(case: tuple[dict[str, Any], frozenset[str], Scope]) -> None:
        found = _run_hooks(a, *case)
        if found:
            raise ProblemFound(found)

    found = explore(strategy, check, examples=s.examples)
    if found:
        problems.append(found)
    return problems


def _callback_outcome(a: Adapter, payload: Any, belongs: Callable[[str], bool], config: Any) -> str | None:
    """None when the payload is accepted soundly or rejected with field issues; else the problem."""
    try:
        result = a.map_callback(payload, callback_context(config=config, events=belongs))
    except CallbackRejected as exc:
        if not exc.fields:
            return f"CallbackRejected without field issues for {shorten(payload)}"
        bad = _issue_problems(exc.fields, "CallbackRejected")
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


def _check_callbacks(s: _Subject) -> list[str]:
    a = s.adapter
    problems: list[str] = []

    def belongs(_: str) -> bool:
        return True

    if s.callback is _NOT_GIVEN:
        s.note("callbacks", "no sample payload given: only rejection of junk was checked")
    else:
        try:
            result = a.map_callback(s.callback, callback_context(config=s.config, events=belongs))
        except CallbackRejected as exc:
            listed = "; ".join(_issue_text(i) for i in exc.fields)
            problems.append(f"the sample payload was rejected ({listed}); give an acceptable sample_callback")
        except Exception as exc:
            problems.append(f"the sample payload raised {type(exc).__name__}: {exc}")
        else:
            found = _callback_result_problem(result, s.callback)
            if found:
                problems.append(found)
            elif not result.records:
                s.note("callbacks", "the sample payload produced no records")
    for payload in JUNK_PAYLOADS:
        try:
            a.map_callback(payload, callback_context(config=s.config, events=belongs))
        except CallbackRejected as exc:
            if not exc.fields:
                problems.append(f"CallbackRejected without field issues for {shorten(payload)}")
            continue
        except Exception as exc:
            problems.append(f"raised {type(exc).__name__}: {exc} for {shorten(payload)}")
            continue
        problems.append(f"accepted the junk payload {shorten(payload)}")
    if problems:
        return problems
    if not hypothesis_available():
        s.note("callbacks", "hypothesis is not installed: only the fixed corpus of payloads was tried")
        return problems
    from hypothesis import strategies as st

    sample = s.callback if isinstance(s.callback, Mapping) else {}
    strategy = st.tuples(
        st.one_of(json_values(), mappings_like(sample, list(sample))),
        st.booleans(),
    )

    def check(case: tuple[Any, bool]) -> None:
        payload, known = case
        found = _callback_outcome(a, payload, lambda _: known, s.config)
        if found:
            raise ProblemFound(found)

    found = explore(strategy, check, examples=s.examples)
    if found:
        problems.append(found)
    return problems


def _echo(status: int) -> Callable[[httpx.Request], Reply]:
    """An error answer whose body repeats the request's headers, as careless partners do."""

    def answer(request: httpx.Request) -> Reply:
        echoed = " ".join(f"{k}={v}" for k, v in request.headers.items())
        return Reply(status, {"error": f"HTTP {status}", "message": f"request was: {request.url} {echoed}"})

    return answer


def _not_json(request: httpx.Request) -> Reply:
    return Reply(200, text=f"<html>maintenance {request.url} {' '.join(request.headers.values())}</html>")


@dataclass(frozen=True, slots=True)
class _Scenario:
    name: str
    answer: Answer
    expected: tuple[type[BaseException], ...]
    result_allowed: bool = False
    max_requests: int | None = None


_TRANSIENT_MAX = 3
SYNC_SCENARIOS: tuple[_Scenario, ...] = (
    _Scenario("HTTP 401", _echo(401), (CredentialsRejected,), max_requests=1),
    _Scenario("HTTP 403", _echo(403), (CredentialsRejected,), max_requests=1),
    _Scenario("HTTP 500", _echo(500), (PartnerUnavailable,), max_requests=_TRANSIENT_MAX),
    _Scenario("HTTP 502", _echo(502), (PartnerUnavailable,), max_requests=_TRANSIENT_MAX),
    _Scenario("HTTP 503", _echo(503), (PartnerUnavailable,), max_requests=_TRANSIENT_MAX),
    _Scenario("HTTP 504", _echo(504), (PartnerUnavailable,), max_requests=_TRANSIENT_MAX),
    _Scenario("connect timeout", httpx.ConnectTimeout, (PartnerUnavailable,), max_requests=_TRANSIENT_MAX),
    _Scenario("read timeout", httpx.ReadTimeout, (PartnerUnavailable,), max_requests=_TRANSIENT_MAX),
    _Scenario(
        "connection refused",
        httpx.ConnectError("[Errno 111] Connection refused"),
        (PartnerUnavailable,),
        max_requests=_TRANSIENT_MAX,
    ),
    _Scenario(
        "HTTP 200 that is not JSON",
        _not_json,
        (CredentialsRejected, PartnerUnavailable, DriftDetected),
        result_allowed=True,
    ),
    _Scenario(
        "HTTP 200 with an empty object",
        {},
        (CredentialsRejected, PartnerUnavailable, DriftDetected),
        result_allowed=True,
    ),
    _Scenario(
        "HTTP 200 with a list",
        [],
        (CredentialsRejected, PartnerUnavailable, DriftDetected),
        result_allowed=True,
    ),
)


def _error_text(exc: BaseException) -> str:
    parts = [str(exc)]
    if isinstance(exc, AdapterError):
        parts.append(exc.message)
        parts.extend(_issue_text(i) for i in exc.fields)
    if isinstance(exc, DriftDetected):
        parts.extend(exc.reasons)
    return "\n".join(parts)


def _result_text(result: SyncResult) -> str:
    records = [
        {"kind": r.kind, "external_id": r.external_id, "data": r.data}
        for r in result.records
        if isinstance(r, RecordUpsert)
    ]
    return _dump({"records": records, "drift": list(result.drift), "summary": result.summary})


def _sync_result_problems(result: SyncResult, where: str) -> list[str]:
    problems = record_problems(result.records, where)
    if isinstance(result.drift, str) or not all(isinstance(d, str) and d for d in result.drift):
        problems.append(f"{where}: drift must be a list of non-empty strings")
    if not isinstance(result.summary, str) or len(result.summary) > 500:
        problems.append(f"{where}: summary must be a string of at most 500 characters")
    return problems


def _run_scenario(
    s: _Subject, partner: FakePartner, last_success_at: datetime | None
) -> tuple[SyncResult | None, BaseException | None, list[str]]:
    """Run sync once; returns the result or the error, and the secret leaks it caused."""
    with _capture_logs() as logs, partner.client() as http:
        ctx = sync_context(
            config=s.config,
            secrets=s.secrets,
            http=http,
            last_success_at=last_success_at,
            now=datetime.now(UTC),
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


def _check_sync_errors(s: _Subject) -> list[str]:
    problems: list[str] = []
    leaked: dict[str, list[str]] = {}
    for scenario in SYNC_SCENARIOS:
        partner = FakePartner.always(scenario.answer)
        result, error, leaks = _run_scenario(s, partner, None)
        where = f"partner answers {scenario.name}:"
        if not partner.requests:
            problems.append(f"{where} sync made no request through ctx.http")
            continue
        for leak in leaks:
            leaked.setdefault(leak, []).append(scenario.name)
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
        if scenario.max_requests is not None and len(partner.requests) > scenario.max_requests:
            problems.append(
                f"{where} sync made {len(partner.requests)} requests; stop after "
                f"{scenario.max_requests} and leave retries to the framework"
            )
    for leak, names in leaked.items():
        problems.append(f"{leak} (when the partner answers {', '.join(names)})")
    return problems


def _brief(error: BaseException, s: _Subject) -> str:
    """The error's message, secrets masked first, then shortened."""
    text = str(error)
    for value in s.searchable_secrets:
        text = text.replace(value, MASK)
    return shorten(text, 160).strip("'\"")


def _check_sync(s: _Subject) -> list[str]:
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


_RUNNERS: dict[str, Callable[[_Subject], list[str]]] = {
    "declarations": _check_declarations,
    "secrets": _check_secrets,
    "validation": _check_validation,
    "callbacks": _check_callbacks,
    "sync_errors": _check_sync_errors,
    "sync": _check_sync,
}


def _tidy(problems: Iterable[str], secrets: Sequence[str]) -> tuple[str, ...]:
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


def _skip_reason(name: str, s: _Subject) -> str | None:
    a = s.adapter
    if name == "callbacks" and not a.supports_inbound_callbacks:
        return "the adapter does not accept callbacks"
    if name in ("sync_errors", "sync") and not a.supports_background_sync:
        return "the adapter does not sync in the background"
    if name == "sync" and s.partner is None:
        return "no scripted partner given"
    return None


def check_adapter(
    adapter: Adapter | type[Adapter],
    *,
    config: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    callback: Any = _NOT_GIVEN,
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
    wanted = set(only) if only is not None else set(_RUNNERS)
    unknown = wanted - set(_RUNNERS)
    if unknown:
        raise ValueError(f"unknown checks: {', '.join(sorted(unknown))}")
    key = str(getattr(adapter, "integration_key", getattr(adapter, "__name__", repr(adapter))))
    try:
        instance = _instance(adapter)
        if not isinstance(instance, Adapter):
            raise TypeError(f"{adapter!r} is not a tovplus Adapter")
    except Exception as exc:
        problem = f"the adapter could not be created: {type(exc).__name__}: {exc}"
        return ConformanceReport(key, (CheckResult("declarations", _TITLES["declarations"], (problem,)),))
    declared = _check_declarations(
        _Subject(instance, {}, {}, _NOT_GIVEN, None, examples)  # declarations need no samples
    )
    if declared:
        # Nothing else can be trusted (or even run) while the declarations are unsound.
        results = [CheckResult("declarations", _TITLES["declarations"], tuple(declared))]
        results += [
            CheckResult(n, t, skipped="the declarations are not sound")
            for n, t in CHECKS
            if n != "declarations" and n in wanted
        ]
        return ConformanceReport(key, tuple(results))
    try:
        sample_config = dict(config) if config is not None else derive_sample_config(instance)
        sample_secrets = dict(secrets) if secrets is not None else derive_sample_secrets(instance)
    except SampleError as exc:
        problem = f"{exc} (pass sample_config / sample_secrets)"
        results = [CheckResult("declarations", _TITLES["declarations"])]
        results += [CheckResult(n, t, (problem,)) for n, t in CHECKS if n != "declarations" and n in wanted]
        return ConformanceReport(key, tuple(results))
    factory: Callable[[], FakePartner] | None
    if isinstance(partner, FakePartner):
        given = partner

        def factory() -> FakePartner:
            return given

    else:
        factory = partner
    subject = _Subject(instance, sample_config, sample_secrets, callback, factory, examples)
    if not subject.searchable_secrets and instance.secret_fields:
        subject.note("secrets", "the sample secrets are too short to search for in outputs")
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
            found = _RUNNERS[name](subject)
        except Exception as exc:  # a bug in a check must still give a readable report
            found = [f"the check itself failed: {type(exc).__name__}: {exc}"]
        problems = _tidy(found, subject.searchable_secrets)
        results.append(CheckResult(name, title, problems, notes=tuple(subject.notes.get(name, ()))))
    return ConformanceReport(key, tuple(results))


def assert_conforms(
    adapter: Adapter | type[Adapter],
    *,
    config: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    callback: Any = _NOT_GIVEN,
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


class AdapterConformance:
    """Subclass in a test module to run the conformance suite as pytest tests (one per check).

    ::

        class TestCateringAdapter(AdapterConformance):
            adapter = CateringAdapter
            sample_config = {"kitchen_id": "k-1", "api_base_url": "https://api.example.com"}
            sample_secrets = {"api_key": "ck_test_0123456789"}
            sample_callback = {"type": "menu.confirmed", ...}

            def partner(self) -> FakePartner:      # optional: a partner a sync succeeds against
                return FakePartner({...})

    Only ``adapter`` is required; samples are derived from the declarations when omitted.
    """

    adapter: ClassVar[Adapter | type[Adapter]]
    sample_config: ClassVar[Mapping[str, Any] | None] = None
    sample_secrets: ClassVar[Mapping[str, str] | None] = None
    sample_callback: ClassVar[Any] = _NOT_GIVEN
    examples: ClassVar[int] = DEFAULT_EXAMPLES

    def partner(self) -> FakePartner | None:
        """Override to return a scripted partner that a sync succeeds against."""
        return None

    def _run(self, name: str) -> None:
        if getattr(self, "adapter", None) is None:
            raise AssertionError(f"{type(self).__name__}: set `adapter = YourAdapter` on the class")
        partner: Callable[[], FakePartner] | None = None
        if self.partner() is not None:

            def fresh() -> FakePartner:
                made = self.partner()
                assert made is not None
                return made

            partner = fresh
        report = check_adapter(
            self.adapter,
            config=self.sample_config,
            secrets=self.sample_secrets,
            callback=self.sample_callback,
            partner=partner,
            examples=self.examples,
            only=[name],
        )
        result = next((r for r in report.results if r.name == name), report.results[0])
        if not result.passed:
            raise AssertionError(f"adapter {report.integration_key!r}:\n{result.format()}")
        if result.skipped:
            _skip(result.skipped)

    def test_declarations(self) -> None:
        self._run("declarations")

    def test_secrets_stay_out_of_public_views(self) -> None:
        self._run("secrets")

    def test_validation_returns_field_errors_and_never_raises(self) -> None:
        self._run("validation")

    def test_callbacks_reject_junk_with_field_errors(self) -> None:
        self._run("callbacks")

    def test_sync_maps_partner_errors(self) -> None:
        self._run("sync_errors")

    def test_sync_against_scripted_partner(self) -> None:
        self._run("sync")


def _skip(reason: str) -> None:
    try:
        import pytest
    except ImportError:  # not under pytest: a skipped check simply passes
        return
    pytest.skip(reason)
