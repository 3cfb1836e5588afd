"""The ``leaks`` check: no secret value or token is logged, returned, raised or kept by any hook.

Every hook that gets credentials (``sync``, ``check``, each action's ``perform``), then
``map_callback`` on the same instance, runs with canary values: the sample secrets of an api-key
adapter, or the access and refresh tokens of a fresh :class:`~tovplus.testing.oauth.FakeAuthorizationServer`
for an OAuth2 one. The partner answers as scripted, then with errors that echo the request (its
``Authorization`` header included). Every log record of every logger at DEBUG (message, arguments,
``extra`` fields, traceback), every result, every error message, the sync state and what the
adapter keeps on itself or in its module are searched for the canaries.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tovplus.integrations.actions import ActionResult
from tovplus.integrations.contract import CheckResult, SyncResult
from tovplus.integrations.sync_state import MemoryCheckpoints
from tovplus.testing.actions import action_context
from tovplus.testing.conformance.checks.actions import _GUESTS, _sample_input
from tovplus.testing.conformance.checks.common import Subject, dump
from tovplus.testing.conformance.checks.sync import _echo, _error_text, _result_text
from tovplus.testing.conformance.samples import NOT_GIVEN
from tovplus.testing.fake_partner import FakePartner
from tovplus.testing.hooks import callback_context, check_context, sync_context

#: The attributes every ``LogRecord`` has; anything else came in through ``extra=``.
_STANDARD_RECORD_KEYS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
#: A hook run: given ``(http, access_token)``, the texts of what it returned.
Hook = Callable[[httpx.Client, str | None], list[str]]


class _EveryRecord(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            text = f"{record.msg} {record.args!r}"
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD_RECORD_KEYS}
        parts = [f"{record.name}: {text}", dump(extra) if extra else ""]
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        self.texts.append("\n".join(parts))


@contextmanager
def capture_every_log() -> Iterator[_EveryRecord]:
    """Every record of every logger, at DEBUG, for the ``with`` block (levels restored after)."""
    handler = _EveryRecord()
    manager = logging.root.manager
    loggers = [logging.root, *(x for x in manager.loggerDict.values() if isinstance(x, logging.Logger))]
    levels = [(x, x.level) for x in loggers]
    isolated = [x for x in loggers if not x.propagate]
    disabled = manager.disable
    logging.disable(logging.NOTSET)
    for x in loggers:
        x.setLevel(logging.DEBUG)
    for x in [logging.root, *isolated]:
        x.addHandler(handler)
    try:
        yield handler
    finally:
        for x in [logging.root, *isolated]:
            x.removeHandler(handler)
        for x, level in levels:
            x.setLevel(level)
        logging.disable(disabled)


def _sync(s: Subject) -> Hook:
    def run(http: httpx.Client, token: str | None) -> list[str]:
        ctx = sync_context(config=s.config, secrets=s.secrets, http=http, access_token=token)
        result = s.adapter.sync(ctx)
        pages = ctx.checkpointer.pages if isinstance(ctx.checkpointer, MemoryCheckpoints) else []
        texts = [dump({"state": ctx.state, "pages": pages})]
        if isinstance(result, SyncResult):
            texts += [_result_text(result), dump({"state": result.state})]
        return texts

    return run


def _check(s: Subject) -> Hook:
    def run(http: httpx.Client, token: str | None) -> list[str]:
        ctx = check_context(config=s.config, secrets=s.secrets, http=http, access_token=token)
        result = s.adapter.check(ctx)
        if isinstance(result, CheckResult):
            return [dump({"summary": result.summary, "drift": list(result.drift)})]
        return [dump(result)]

    return run


def _perform(s: Subject, key: str) -> Hook:
    def run(http: httpx.Client, token: str | None) -> list[str]:
        spec = s.adapter.action(key)
        assert spec is not None
        ctx = action_context(
            config=s.config,
            secrets=s.secrets,
            http=http,
            action_keys=s.adapter.action_keys,
            guests=_GUESTS,
            access_token=token,
        )
        result = s.adapter.perform(key, _sample_input(spec), ctx)
        if isinstance(result, ActionResult):
            return [dump({"summary": result.summary, "details": dict(result.details)})]
        return [dump(result)]

    return run


def _hooks(s: Subject) -> list[tuple[str, Hook]]:
    a = s.adapter
    hooks: list[tuple[str, Hook]] = []
    if a.supports_background_sync:
        hooks.append(("sync", _sync(s)))
    if a.supports_credential_check:
        hooks.append(("check", _check(s)))
    hooks += [(f"action {spec.key!r}", _perform(s, spec.key)) for spec in a.actions]
    return hooks


def _partners(s: Subject) -> list[tuple[str, Callable[[], FakePartner]]]:
    def happy() -> FakePartner:
        return s.partner() if s.partner is not None else FakePartner.always({})

    return [
        ("the partner answers as scripted" if s.partner else "the partner answers {}", happy),
        ("the partner answers HTTP 401 echoing the request", lambda: FakePartner.always(_echo(401))),
        ("the partner answers HTTP 500 echoing the request", lambda: FakePartner.always(_echo(500))),
    ]


def _found(s: Subject, where: str, channels: dict[str, list[str]]) -> list[str]:
    return [
        f"{where}: {channel} holds {label!r}"
        for channel, texts in channels.items()
        for label in sorted({label for text in texts for label in s.leaks(text)})
    ]


def _callback_problems(s: Subject) -> list[str]:
    """``map_callback`` gets no credentials: after the runs above, it must not hand any back."""
    payload = s.callback if s.callback is not NOT_GIVEN else {"event": "conformance.probe"}
    with capture_every_log() as logs:
        try:
            result: Any = s.adapter.map_callback(
                payload, callback_context(config=s.config, events=lambda _: True)
            )
            texts, error = [repr(result)], []
        except Exception as exc:  # CallbackRejected for junk, or a bug: its message is searched too
            texts, error = [], [_error_text(exc)]
    return _found(s, "map_callback", {"its result": texts, "its error": error, "a log record": logs.texts})


def _kept(s: Subject) -> str:
    """What the adapter keeps: its instance attributes, and the containers of its module."""
    a = s.adapter
    module = sys.modules.get(type(a).__module__)
    kept: dict[str, Any] = {"instance": getattr(a, "__dict__", {})}
    if module is not None:
        kept["module"] = {
            k: v for k, v in vars(module).items() if isinstance(v, str | bytes | dict | list | set | tuple)
        }
    return dump(kept)


def check_leaks(s: Subject) -> list[str]:
    """Run every credentialed hook with canary credentials; no canary may come out anywhere.

    What the adapter keeps is compared with what it kept before the runs (a test module may well
    hold the sample secrets itself).
    """
    kept_before = set(s.leaks(_kept(s)))
    problems: list[str] = []
    for scenario, partner in _partners(s):
        for name, hook in _hooks(s):
            texts: list[str] = []
            errors: list[str] = []
            with capture_every_log() as logs:
                try:
                    with s.http(partner()) as (http, token):
                        texts = hook(http, token)
                except Exception as exc:
                    errors = [_error_text(exc)]
            channels = {"its result": texts, "its error": errors, "a log record": logs.texts}
            problems += _found(s, f"{name}, when {scenario}", channels)
    if s.adapter.supports_inbound_callbacks:
        problems += _callback_problems(s)
    kept = [label for label in s.leaks(_kept(s)) if label not in kept_before]
    return problems + [f"after the runs: what the adapter keeps holds {label!r}" for label in kept]
