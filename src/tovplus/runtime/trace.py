"""One request id per piece of work, from the API request to the partner's HTTP call.

* The API takes ``x-request-id`` from the caller when it is a sane token (1 to 64 of
  ``[A-Za-z0-9._-]``), else makes one (``req_…``, time-ordered), binds it here for the
  request and answers with it (``tovplus.api.request_ids``).
* Work the request queues carries it: a sync run or webhook delivery inserted while an id is
  bound stores it in its ``request_id`` column (a mapper event below, so the services need not
  pass it). The worker's task binds the stored id again (:func:`bound_to_row`); work nobody
  requested (scheduled syncs) is traced by its own row id.
* Every log record made while an id is bound has ``record.request_id`` (the JSON log format
  prints it), and every request through :func:`tovplus.integrations.http.outbound_client`
  carries it as ``x-request-id``.

Importing this module installs the log-record factory, the outbound hook and the mapper events.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import httpx
from sqlalchemy import event, select

from tovplus.db.ids import new_id
from tovplus.db.models import Base, SyncRun, WebhookDelivery
from tovplus.db.session import Database
from tovplus.integrations import http

REQUEST_ID_HEADER = "x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_current: ContextVar[str | None] = ContextVar("tovplus_request_id", default=None)
F = TypeVar("F", bound=Callable[..., Any])


def new_request_id() -> str:
    return new_id("req")


def accept(offered: str | None) -> str:
    """The caller's id when it is a sane token, else a new one."""
    if offered is not None and _SANE.fullmatch(offered):
        return offered
    return new_request_id()


def current() -> str | None:
    """The request id bound in this context, if any."""
    return _current.get()


@contextmanager
def bound(request_id: str | None) -> Iterator[str | None]:
    """Bind ``request_id`` (``None`` unbinds) for the block."""
    token = _current.set(request_id)
    try:
        yield request_id
    finally:
        _current.reset(token)


def stored_request_id(db: Database, model: type[SyncRun] | type[WebhookDelivery], row_id: str) -> str | None:
    with db.read() as session:
        return session.scalar(select(model.request_id).where(model.id == row_id))


def bound_to_row(db: Database, model: type[SyncRun] | type[WebhookDelivery]) -> Callable[[F], F]:
    """Decorate a queue task taking a row id: it runs under the row's stored request id (or the
    row id itself, for work no request caused)."""

    def decorate(task: F) -> F:
        @functools.wraps(task)
        def traced(row_id: str, *args: Any, **kwargs: Any) -> Any:
            with bound(stored_request_id(db, model, row_id) or row_id):
                return task(row_id, *args, **kwargs)

        return traced  # type: ignore[return-value]

    return decorate


# --- what importing this module installs -------------------------------------------------------


def _stamp_row(_mapper: Any, _connection: Any, row: Any) -> None:
    if row.request_id is None:
        row.request_id = _current.get()


def _stamp_outbound(request: httpx.Request) -> None:
    request_id = _current.get()
    if request_id is not None and REQUEST_ID_HEADER not in request.headers:
        request.headers[REQUEST_ID_HEADER] = request_id


def _install_log_records() -> None:
    previous = logging.getLogRecordFactory()
    if getattr(previous, "tovplus_request_ids", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        request_id = _current.get()
        if request_id is not None:
            record.request_id = request_id
        return record

    factory.tovplus_request_ids = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _install() -> None:
    _install_log_records()
    if _stamp_outbound not in http.REQUEST_HOOKS:
        http.REQUEST_HOOKS.append(_stamp_outbound)
    model: type[Base]
    for model in (SyncRun, WebhookDelivery):
        if not event.contains(model, "before_insert", _stamp_row):
            event.listen(model, "before_insert", _stamp_row)


_install()
