"""A scripted fake partner API: routes that answer an adapter's HTTP requests, no network involved.

    partner = FakePartner({
        "GET /accounts/acct-1": {"account_id": "acct-1", "status": "active"},
        "GET /accounts/acct-1/orders": Reply(200, {"orders": []}),
    })
    with partner.client() as http:
        ...
    assert partner.requests[0].headers["authorization"] == "Bearer test-key"

Nothing here opens a socket: :class:`FakePartner` is an ``httpx.MockTransport``,
and the client it gives the adapter is the same kind of ``httpx.Client`` the
framework passes in ``SyncContext.http``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import httpx

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


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted HTTP answer. ``json`` is the body unless ``text`` is given."""

    status: int = 200
    json: Any = None
    text: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_response(self, request: httpx.Request) -> httpx.Response:
        """This answer as the ``httpx.Response`` to ``request``."""
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
        """The next answer (the last one once all were given)."""
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
        """An ``httpx.MockTransport`` that answers through :meth:`handle`."""
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


__all__ = ["Answer", "FakePartner", "Replies", "Reply"]
