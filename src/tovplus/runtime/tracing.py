"""Optional OpenTelemetry tracing: one trace from the API request to the partner's HTTP call.

Off by default (``TOVPLUS_OTEL_ENABLED``); off, nothing of ``opentelemetry`` is imported and
:func:`span` is a shared no-op. On (the ``[otel]`` extra), :func:`configure_tracing` builds one
tracer provider per process, instruments httpx (every ``httpx.HTTPTransport``, so partner and
webhook calls, not the test client), the given SQLAlchemy engine and the given FastAPI app.

Crossing the queue: a sync run or webhook delivery inserted while a span is current stores it
as a W3C ``traceparent`` (column of the same name, like ``request_id``; a mapper event installed
here). The worker's span for that row takes the stored value as its parent, so the run, its
adapter's HTTP calls and the deliveries it causes are one trace with the request that queued it.
Every span carries the bound request id as ``tovplus.request_id``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event, select

from tovplus.db.models import SyncRun, WebhookDelivery
from tovplus.db.session import Database
from tovplus.runtime import trace
from tovplus.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

TRACER_NAME = "tovplus"
REQUEST_ID_ATTRIBUTE = "tovplus.request_id"
_NOOP: AbstractContextManager[None] = contextlib.nullcontext()
_state: dict[str, Any] = {}  # "tracer", "provider", "exporter" once configured
_instrumented: set[int] = set()  # ids of the engines and apps already instrumented


def enabled() -> bool:
    """Whether this process traces."""
    return "tracer" in _state


def configure_tracing(settings: Settings, app: FastAPI | None = None, engine: Engine | None = None) -> None:
    """Switch tracing on when ``settings.otel_enabled`` (once per process) and instrument
    ``app`` and ``engine`` (once each). Does nothing, and imports nothing, when it is off."""
    if not settings.otel_enabled:
        return
    if not enabled():
        _start(settings)
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    provider = _state["provider"]
    if engine is not None and id(engine) not in _instrumented:
        _instrumented.add(id(engine))
        # per engine: instrument() would do only the first engine of the process (a singleton)
        SQLAlchemyInstrumentor()._instrument(engine=engine, tracer_provider=provider)  # type: ignore[no-untyped-call]
    if app is not None and id(app) not in _instrumented:
        _instrumented.add(id(app))
        FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)


def _start(settings: Settings) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": "tovplus-integrations"}))
    exporter: Any = None
    if settings.otel_exporter == "console":
        exporter = ConsoleSpanExporter()
    elif settings.otel_exporter == "memory":
        exporter = InMemorySpanExporter()
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    for model in (SyncRun, WebhookDelivery):
        event.listen(model, "before_insert", _stamp_traceparent)
    _state.update(tracer=provider.get_tracer(TRACER_NAME), provider=provider, exporter=exporter)


def shutdown_tracing() -> None:
    """Switch tracing off again (tests): spans go nowhere, httpx and the mapper are restored."""
    if not enabled():
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().uninstrument()
    _uninstrument_sqlalchemy()
    for model in (SyncRun, WebhookDelivery):
        event.remove(model, "before_insert", _stamp_traceparent)
    _state.pop("provider").shutdown()
    _state.clear()
    _instrumented.clear()


def _uninstrument_sqlalchemy() -> None:
    """Restore ``Engine.connect`` and ``create_engine`` and drop the engines' listeners.

    The instrumentor wraps ``Engine.connect`` for every engine given to it, process-wide: left
    wrapped, every later connection of any engine made a span of the shut-down provider, which
    logged "Processor is already shutdown" from whatever thread connected.
    """
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    while hasattr(Engine.connect, "__wrapped__"):
        SQLAlchemyInstrumentor()._uninstrument()  # type: ignore[no-untyped-call]


def exporter() -> Any:
    """The span exporter in use (an ``InMemorySpanExporter`` with ``otel_exporter=memory``)."""
    return _state.get("exporter")


def span(name: str, *, parent: str | None = None, **attributes: Any) -> AbstractContextManager[Any]:
    """A span named ``name`` for the block (a no-op when tracing is off). ``parent`` is a stored
    ``traceparent`` the span continues; ``None`` values among ``attributes`` are left out."""
    if "tracer" not in _state:
        return _NOOP
    return _span(name, parent, attributes)


def row_span(
    name: str, db: Database, model: type[SyncRun] | type[WebhookDelivery], row_id: str, **attributes: Any
) -> AbstractContextManager[Any]:
    """:func:`span` for the work on one queued row: it continues the row's stored ``traceparent``
    and carries its stored request id (when none is bound). One read, only when tracing is on."""
    if "tracer" not in _state:
        return _NOOP
    with db.read() as session:
        stored = session.execute(
            select(model.request_id, model.traceparent).where(model.id == row_id)
        ).one_or_none()
    request_id, parent = stored if stored is not None else (None, None)
    return _span(name, parent, {**attributes, "request_id": trace.current() or request_id})


@contextmanager
def _span(name: str, parent: str | None, attributes: dict[str, Any]) -> Iterator[Any]:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract({"traceparent": parent}) if parent else None
    attrs = {f"tovplus.{key}": value for key, value in attributes.items() if value is not None}
    request_id = trace.current()
    if request_id is not None:
        attrs[REQUEST_ID_ATTRIBUTE] = request_id
    with _state["tracer"].start_as_current_span(name, context=context, attributes=attrs) as current:
        yield current


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, if tracing is on and a span is current."""
    if "tracer" not in _state:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def _stamp_traceparent(_mapper: Any, _connection: Any, row: Any) -> None:
    if row.traceparent is None:
        row.traceparent = current_traceparent()
