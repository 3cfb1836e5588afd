"""What a callback says: its delivery id, checked, and the adapter's reading of its payload."""

from __future__ import annotations

import logging
from typing import cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from tovplus.db.models import Event
from tovplus.errors import CallbackRejected, FieldIssue, TovPlusError
from tovplus.integrations import standard_webhooks
from tovplus.integrations.contract import Adapter, CallbackContext, CallbackResult, RecordUpsert
from tovplus.services.callbacks.batch import Target
from tovplus.services.callbacks.body import unstorable
from tovplus.services.callbacks.inbound import (
    DELIVERY_HEADER,
    MAX_DELIVERY_ID,
    MAX_ID_LENGTH,
    InboundCallback,
)
from tovplus.services.records import record_problems

log = logging.getLogger(__name__)

_EVENTS = cast(Table, Event.__table__)
_EVENT = select(_EVENTS.c.id).where(
    _EVENTS.c.id == bindparam("event_id"), _EVENTS.c.occasion_id == bindparam("occasion_id")
)
_UNREADABLE = "The integration could not read this payload."


def delivery_id_of(job: InboundCallback) -> str | None:
    """The callback's delivery id (``None`` without one), or 422 when it cannot be one."""
    delivery_id = job.effective_delivery_id
    if delivery_id is not None and not (
        0 < len(delivery_id) <= MAX_DELIVERY_ID and delivery_id.isprintable()
    ):
        header = DELIVERY_HEADER if job.delivery_id is not None else standard_webhooks.ID_HEADER
        raise CallbackRejected(
            "The delivery id is not valid.",
            fields=[
                FieldIssue(
                    f"headers.{header}",
                    "invalid",
                    f"Must be 1 to {MAX_DELIVERY_ID} printable characters.",
                )
            ],
        )
    return delivery_id


def map_payload(session: Session, job: InboundCallback, target: Target, adapter: Adapter) -> CallbackResult:
    """The adapter's records for the payload, or :class:`CallbackRejected` (422) with field errors."""
    if b"\\u" in job.body and unstorable(job.payload):
        raise CallbackRejected(
            "The payload holds characters that cannot be stored.",
            fields=[
                FieldIssue("payload", "invalid_characters", "NUL and unpaired surrogates are not accepted.")
            ],
        )
    occasion_id = target.occasion_id

    def event_belongs_to_occasion(event_id: str) -> bool:
        if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_ID_LENGTH:
            return False
        params = {"event_id": event_id, "occasion_id": occasion_id}
        return session.execute(_EVENT, params).first() is not None

    ctx = CallbackContext(target.connection_id, occasion_id, target.config, event_belongs_to_occasion)
    try:
        result = adapter.map_callback(job.payload, ctx)
    except CallbackRejected:
        raise
    except TovPlusError as exc:  # another typed adapter error: still the payload's fault
        raise CallbackRejected(exc.message, fields=exc.fields) from None
    except Exception:
        log.exception("adapter %s crashed mapping a callback", adapter.integration_key)
        raise CallbackRejected(
            _UNREADABLE,
            fields=[FieldIssue("payload", "unreadable", "The integration could not map this payload.")],
        ) from None
    if not isinstance(result, CallbackResult) or not all(isinstance(r, RecordUpsert) for r in result.records):
        log.error("adapter %s returned %r from map_callback", adapter.integration_key, type(result))
        raise CallbackRejected(
            _UNREADABLE,
            fields=[FieldIssue("payload", "unreadable", "The integration could not map this payload.")],
        )
    problems = record_problems(result.records)
    if problems:
        raise CallbackRejected("The payload maps to records that cannot be stored.", fields=problems)
    return result
