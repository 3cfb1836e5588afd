"""The ``send_invitations`` action: one message to the occasion's guests, through the partner.

``POST {api_base_url}/messages`` with ``{"sender_name", "message", "recipients": [{"guest_id",
"name", "email"}]}`` and ``Idempotency-Key: <action run id>``; the partner answers ``202
{"batch_id", "accepted"}``. Without ``guest_ids`` every guest is a recipient; ``guest_ids`` that
are not guests of the occasion fail the run at once, naming them (nothing is sent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tovplus.errors import DriftDetected, FieldIssue, InvalidInput
from tovplus.integrations.actions import ActionContext, ActionResult, ActionSpec, GuestData
from tovplus.integrations.adapters.guest_messaging.partner import base_url, call
from tovplus.integrations.fields import Field, FieldType

SEND_INVITATIONS = ActionSpec(
    key="send_invitations",
    label="Send invitations",
    description=(
        "Sends your message to the occasion's guests (all of them, or the ones you list) through "
        "the messaging service, from the sender name in the settings. Sent once, however often it "
        "is retried."
    ),
    input_fields=(
        Field(
            "message",
            "Message",
            required=True,
            help="What the guests receive: 1 to 2,000 characters.",
            min_length=1,
            max_length=2000,
        ),
        Field(
            "guest_ids",
            "Guest IDs",
            FieldType.STRING_LIST,
            help="Only these guests (one ID a line, or comma-separated). Leave empty for every guest.",
            max_length=200,
            max_items=5000,
        ),
    ),
    requires=("guests.read",),
)

#: How many unknown guest ids a failure names (the rest are counted).
_NAMED = 10


def send_invitations(input: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
    """POST the batch with the run's id as ``Idempotency-Key``; the same run never sends twice."""
    recipients = _recipients(ctx.data.guests(), input.get("guest_ids"))
    body = {
        "sender_name": str(ctx.config["sender_name"]),
        "message": str(input["message"]),
        "recipients": [{"guest_id": g.guest_id, "name": g.name, "email": g.email} for g in recipients],
    }
    answer = call(
        ctx.http,
        "POST",
        f"{base_url(ctx.config)}/messages",
        json=body,
        headers={"Idempotency-Key": ctx.idempotency_key},
    )
    batch_id, accepted = answer.get("batch_id"), answer.get("accepted")
    if batch_id is not None and not isinstance(batch_id, str):
        raise DriftDetected(["The messaging partner answered with a batch_id that is not text."])
    if accepted is not None and (isinstance(accepted, bool) or not isinstance(accepted, int)):
        raise DriftDetected(["The messaging partner answered with an accepted count that is not a number."])
    count = len(recipients) if accepted is None else accepted
    noun = "invitation" if count == 1 else "invitations"
    batch = f" (batch {batch_id})" if batch_id else ""
    return ActionResult(
        summary=f"{count} {noun} accepted by the messaging partner{batch}",
        details={"batch_id": batch_id, "accepted": count, "recipients": len(recipients)},
    )


def _recipients(guests: Sequence[GuestData], wanted: Any) -> list[GuestData]:
    """Every guest, or those ``wanted`` (in that order, once each); unknown ids are refused."""
    if not wanted:
        return list(guests)
    by_id = {g.guest_id: g for g in guests}
    ids = list(dict.fromkeys(str(i) for i in wanted))
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        named = ", ".join(unknown[:_NAMED]) + (
            f" and {len(unknown) - _NAMED} more" if len(unknown) > _NAMED else ""
        )
        message = f"These guest IDs are not guests of this occasion: {named}. Nothing was sent."
        raise InvalidInput(message, fields=[FieldIssue("input.guest_ids", "unknown_guest", message)])
    return [by_id[i] for i in ids]
