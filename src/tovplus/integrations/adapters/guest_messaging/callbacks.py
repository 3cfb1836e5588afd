"""The messaging partner's callbacks: ``rsvp.received`` (upserts the guest's ``rsvp`` record) and
``message.delivered`` (activity only); any other shape is rejected with field issues (422)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tovplus.integrations.adapters.guest_messaging.rsvps import RESPONSES, rsvp_record
from tovplus.integrations.contract import CallbackResult
from tovplus.integrations.payloads import PayloadReader

RSVP_RECEIVED = "rsvp.received"
MESSAGE_DELIVERED = "message.delivered"


def map_messaging_callback(payload: Any) -> CallbackResult:
    """Map one payload, or raise ``CallbackRejected`` listing what is wrong with it."""
    reader = PayloadReader(payload)
    event = payload.get("event") if isinstance(payload, Mapping) else None
    if event == MESSAGE_DELIVERED:
        reader.literal("event", MESSAGE_DELIVERED)
        guest_id = reader.string("guest_id", max_length=200)
        batch_id = reader.string("batch_id", max_length=200)
        reader.finish()
        return CallbackResult(
            records=[],
            summary=f"Invitation of batch {batch_id} delivered to guest {guest_id}",
            details={"event": MESSAGE_DELIVERED, "guest_id": guest_id, "batch_id": batch_id},
        )
    reader.literal("event", RSVP_RECEIVED, MESSAGE_DELIVERED)
    guest_id = reader.string("guest_id", max_length=200)
    response = reader.literal("response", *RESPONSES)
    occurred_at = reader.timestamp("occurred_at")
    reader.finish()
    return CallbackResult(
        records=[rsvp_record(guest_id, response, occurred_at)],
        summary=f"Guest {guest_id} answered {response}",
        details={"event": RSVP_RECEIVED, "guest_id": guest_id, "response": response},
    )
