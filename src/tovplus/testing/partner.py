"""A scripted fake partner API and helpers that run an adapter's hooks the way the framework does.

    partner = FakePartner({
        "GET /accounts/acct-1": {"account_id": "acct-1", "status": "active"},
        "GET /accounts/acct-1/orders": Reply(200, {"orders": []}),
    })
    result = run_sync(MyAdapter, config=CONFIG, secrets=SECRETS, partner=partner)
    assert partner.requests[0].headers["authorization"] == "Bearer test-key"

Nothing here opens a socket: :class:`FakePartner` is an ``httpx.MockTransport``,
and the client it gives the adapter is the same kind of ``httpx.Client`` the
framework passes in ``SyncContext.http``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

import httpx

from tovplus.integrations.contract import (
    Adapter,
    CallbackContext,
    CallbackResult,
    Scope,
    ScopeType,
    SyncContext,
    SyncResult,
    ValidationContext,
    ValidationResult,
    check_secret_values,
    validate_connection,
)

#: What a scripted route answers with:
#:
#: * a :class:`Reply` (status, JSON or text body, headers);
#: * a ``dict`` or ``list``: a ``200`` with that JSON body;
#: * an ``int``: that status with an empty JSON object as the body;
#: * an exception instance or class, raised as the transport would (``httpx.ConnectTimeout``,
#:   ``httpx.ReadTimeout``, ``httpx.ConnectError`` for a refused connection...);
#: * a callable taking the ``httpx.Request`` and returning any of the above or an ``httpx.Response``;
#: * :class:`Replies`: several answers given in turn.
Answer: TypeAlias = Any

CONNECTION_ID = "con_test"
OCCASION_ID = "occ_test"


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted HTTP answer. ``json`` is the body unless ``text`` is given."""

    status: int = 200
    json: Any = None
    text: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_response(self, request: httpx.Request) -> httpx.Response:
        headers = dict(self.headers)
        if self.text is not None:
            return httpx.Response(self.status, text=self.text, headers=headers, request=request)
        body = {} if self.json is None else self.json
        return httpx.Response(self.status, json=body, headers=headers, request=request)


class Replies:
    """Answers given one per request, in order; the last one repeats."""

    def __init__(self, *answers: Answer) -> None:
        if not answers:
            raise ValueError("Replies needs at least one answer")
        self._answers = list(answers)
        self._next = 0

    def take(self) -> Answer:
        answer = self._answers[min(self._next, len(self._answers) - 1)]
        self._next += 1
        return answer


@dataclass(frozen=True, slots=True)
class _Route:
    method: str | None
    target: str
    answer: Answer

    def matches(self, request: httpx.Request) -> bool:
        if self.method is not None and request.method != self.method:
            return False
        if "://" in self.target:
            return str(request.url.copy_with(query=None, fragment=None)) == self.target
        return request.url.path == self.target or request.url.path.endswith(self.target)


def _parse_route(key: str, answer: Answer) -> _Route:
    method, _, target = key.strip().partition(" ")
    if not target:
        method, target = "", method
    if not (target.startswith("/") or "://" in target):
        raise ValueError(f"route {key!r}: give 'METHOD /path', '/path' or a full URL")
    return _Route(method.upper() or None, target.strip(), answer)


class FakePartner:
    """A partner API made of scripted routes, served through ``httpx.MockTransport``.

    ``routes`` maps ``"METHOD /path"`` (or ``"/path"`` for any method, or a full URL)
    to an :data:`Answer`. A path matches a request whose path is equal to it or ends
    with it, so ``"/accounts/a1"`` matches ``https://partner.example/api/v2/accounts/a1``
    whatever the base URL; the longest matching route wins. Requests that match no
    route get ``otherwise`` (a ``404`` by default) and are also listed in ``unmatched``.
    Every request is kept in ``requests``.
    """

    def __init__(
        self,
        routes: Mapping[str, Answer] | None = None,
        *,
        otherwise: Answer = None,
    ) -> None:
        self._routes = [_parse_route(k, v) for k, v in (routes or {}).items()]
        self._otherwise: Answer = (
            Reply(404, {"error": "not_found", "message": "No such resource."})
            if otherwise is None
            else otherwise
        )
        self.requests: list[httpx.Request] = []
        self.unmatched: list[httpx.Request] = []

    @classmethod
    def always(cls, answer: Answer) -> FakePartner:
        """A partner that gives every request the same answer (e.g. ``401`` or ``httpx.ConnectTimeout``)."""
        return cls({}, otherwise=answer)

    # --- the transport ---------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (the ``httpx.MockTransport`` handler)."""
        request.read()
        self.requests.append(request)
        matching = [r for r in self._routes if r.matches(request)]
        if matching:
            answer = max(matching, key=lambda r: len(r.target)).answer
        else:
            self.unmatched.append(request)
            answer = self._otherwise
        return self._respond(answer, request)

    def _respond(self, answer: Answer, request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Replies):
            return self._respond(answer.take(), request)
        if isinstance(answer, httpx.Response):
            return answer
        if isinstance(answer, Reply):
            return answer.to_response(request)
        if isinstance(answer, bool):
            raise TypeError("a scripted answer cannot be a bool")
        if isinstance(answer, int):
            return Reply(answer).to_response(request)
        if isinstance(answer, Mapping | list):
            return Reply(200, answer).to_response(request)
        if isinstance(answer, type) and issubclass(answer, httpx.RequestError):
            raise answer(f"scripted {answer.__name__}", request=request)
        if isinstance(answer, httpx.RequestError):
            try:
                answer.request  # noqa: B018 - raises when no request is attached
            except RuntimeError:
                answer.request = request
            raise answer
        if isinstance(answer, BaseException) or (
            isinstance(answer, type) and issubclass(answer, BaseException)
        ):
            raise answer
        if callable(answer):
            return self._respond(answer(request), request)
        raise TypeError(f"cannot answer with {answer!r}")

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self, *, timeout: float = 5.0) -> httpx.Client:
        """An ``httpx.Client`` whose every request reaches this fake partner."""
        return httpx.Client(transport=self.transport(), timeout=timeout, follow_redirects=False)

    # --- inspecting what the adapter sent ------------------------------------------

    def requested(self, path: str) -> list[httpx.Request]:
        """The requests whose path is ``path`` or ends with it."""
        return [r for r in self.requests if r.url.path == path or r.url.path.endswith(path)]

    def bodies(self) -> list[Any]:
        """The JSON bodies of the requests that had one."""
        out: list[Any] = []
        for request in self.requests:
            if request.content:
                try:
                    out.append(json.loads(request.content))
                except ValueError:
                    out.append(request.content)
        return out


def _instance(adapter: Adapter | type[Adapter]) -> Adapter:
    return adapter() if isinstance(adapter, type) else adapter


def default_scope(adapter: Adapter | type[Adapter]) -> Scope:
    """A scope the adapter allows, inside the test occasion (``occ_test``)."""
    allowed = _instance(adapter).allowed_scopes
    for kind in (ScopeType.OCCASION, ScopeType.EVENT, ScopeType.PLATFORM):
        if kind in allowed:
            if kind is ScopeType.PLATFORM:
                return Scope(kind)
            event_id = "evt_test" if kind is ScopeType.EVENT else None
            return Scope(kind, OCCASION_ID, event_id)
    return Scope(ScopeType.OCCASION, OCCASION_ID)


def run_validation(
    adapter: Adapter | type[Adapter],
    *,
    config: Mapping[str, Any],
    secrets: Mapping[str, Any] | Iterable[str] = (),
    scope: Scope | None = None,
    allow_private_urls: bool = False,
) -> ValidationResult:
    """Validate a connection as the API does when it is created, edited or enabled.

    ``secrets`` is either the secret values (their format is checked too) or just the
    keys of the secrets that are set. Private URLs are refused unless ``allow_private_urls``.
    """
    instance = _instance(adapter)
    extra = []
    if isinstance(secrets, Mapping):
        extra = check_secret_values(instance, secrets, allow_private_urls=allow_private_urls)
        present = frozenset(k for k, v in secrets.items() if v not in (None, ""))
    else:
        present = frozenset(secrets)
    ctx = ValidationContext(
        config=dict(config),
        secrets_present=present,
        scope=scope or default_scope(instance),
        allow_private_urls=allow_private_urls,
    )
    result = validate_connection(instance, ctx)
    return ValidationResult((*extra, *result.errors), result.warnings)


def sync_context(
    *,
    config: Mapping[str, Any],
    secrets: Mapping[str, str],
    http: httpx.Client,
    last_success_at: datetime | None = None,
    now: datetime | None = None,
    connection_id: str = CONNECTION_ID,
    occasion_id: str = OCCASION_ID,
) -> SyncContext:
    """A :class:`SyncContext` like the one the worker builds."""
    return SyncContext(
        connection_id=connection_id,
        occasion_id=occasion_id,
        config=dict(config),
        secrets=dict(secrets),
        http=http,
        last_success_at=last_success_at,
        now=now or datetime.now(UTC),
    )


def run_sync(
    adapter: Adapter | type[Adapter],
    *,
    config: Mapping[str, Any],
    secrets: Mapping[str, str],
    partner: FakePartner,
    last_success_at: datetime | None = None,
    now: datetime | None = None,
    check_validation: bool = True,
) -> SyncResult:
    """Run the adapter's ``sync`` against ``partner`` and return its :class:`SyncResult`.

    Typed errors (``CredentialsRejected``, ``PartnerUnavailable``, ``DriftDetected``)
    propagate, so test them with ``pytest.raises``. The framework only syncs enabled
    connections, so unless ``check_validation`` is false the config and secrets must
    validate first (private URLs allowed); otherwise this raises ``AssertionError``.
    """
    instance = _instance(adapter)
    if check_validation:
        result = run_validation(instance, config=config, secrets=secrets, allow_private_urls=True)
        if result.errors:
            problems = "; ".join(f"{e.field}: {e.code}" for e in result.errors)
            raise AssertionError(f"this config would not pass validation, so it would never sync: {problems}")
    with partner.client() as http:
        ctx = sync_context(
            config=config, secrets=secrets, http=http, last_success_at=last_success_at, now=now
        )
        return instance.sync(ctx)


def callback_context(
    *,
    config: Mapping[str, Any] | None = None,
    events: Iterable[str] | Callable[[str], bool] = (),
    connection_id: str = CONNECTION_ID,
    occasion_id: str = OCCASION_ID,
) -> CallbackContext:
    """A :class:`CallbackContext`; ``events`` are the event ids that belong to the occasion."""
    if callable(events):
        belongs = events
    else:
        known = frozenset(events)

        def belongs(event_id: str) -> bool:
            return event_id in known

    return CallbackContext(
        connection_id=connection_id,
        occasion_id=occasion_id,
        config=dict(config or {}),
        event_belongs_to_occasion=belongs,
    )


def run_callback(
    adapter: Adapter | type[Adapter],
    payload: Any,
    *,
    config: Mapping[str, Any] | None = None,
    events: Iterable[str] | Callable[[str], bool] = (),
) -> CallbackResult:
    """Map one inbound payload as the callback route does; ``CallbackRejected`` propagates."""
    return _instance(adapter).map_callback(payload, callback_context(config=config, events=events))


def records_by_id(result: SyncResult | CallbackResult) -> dict[str, Mapping[str, Any]]:
    """The records' data keyed by ``external_id`` (handy in assertions)."""
    return {r.external_id: r.data for r in result.records}


__all__ = [
    "Answer",
    "FakePartner",
    "Replies",
    "Reply",
    "callback_context",
    "default_scope",
    "records_by_id",
    "run_callback",
    "run_sync",
    "run_validation",
    "sync_context",
]
