"""Guest answers (RSVPs): the cursor-paged sync and the ``rsvp.received`` callback's record.

``GET {api_base_url}/rsvps?cursor=<opaque or absent>`` → ``{"rsvps": [{"guest_id", "response",
"updated_at"}], "next_cursor": str|null}``. Each page but the last is committed with
``ctx.checkpoint({"cursor": <the next cursor>}, records)``; the last page's records are the
result, and the state kept for the next run is ``{"cursor": <the cursor that asked for the last
page>}``, so the next run starts from it (a full run, or the first, from none).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tovplus.errors import DriftDetected, PartnerUnavailable
from tovplus.integrations.adapters.guest_messaging.partner import base_url, call
from tovplus.integrations.contract import RecordUpsert, SyncContext, SyncResult
from tovplus.integrations.payloads import format_timestamp, parse_timestamp

RECORD_KIND = "rsvp"
RESPONSES = ("yes", "no", "maybe")
#: Longest cursor kept in the sync state (an opaque token from the partner).
MAX_CURSOR = 1000


def rsvp_record(guest_id: str, response: str, updated_at: datetime | None) -> RecordUpsert:
    """The ``rsvp`` record of one guest's answer."""
    return RecordUpsert(
        RECORD_KIND,
        guest_id,
        {
            "guest_id": guest_id,
            "response": response,
            "updated_at": format_timestamp(updated_at) if updated_at else None,
        },
        updated_at,
    )


def start_cursor(ctx: SyncContext) -> str | None:
    """Where this run starts: the kept (or checkpointed) cursor, none on a full or first run."""
    state = ctx.state if isinstance(ctx.state, Mapping) and not ctx.full else {}
    cursor = state.get("cursor")
    return cursor if isinstance(cursor, str) and cursor else None


def sync_rsvps(ctx: SyncContext) -> SyncResult:
    """Page through the partner's RSVPs from the kept cursor until ``next_cursor`` is null."""
    url = f"{base_url(ctx.config)}/rsvps"
    cursor = start_cursor(ctx)
    seen = skipped = 0
    while True:
        body = call(ctx.http, "GET", url, params={"cursor": cursor} if cursor else None)
        records, bad = _page(body)
        seen, skipped = seen + len(records), skipped + bad
        next_cursor = body.get("next_cursor")
        if next_cursor is None:
            return SyncResult(
                records=records,
                drift=_drift(skipped),
                summary=f"{seen} RSVPs updated",
                state={"cursor": cursor},
            )
        if not isinstance(next_cursor, str) or not next_cursor or len(next_cursor) > MAX_CURSOR:
            raise DriftDetected(["The messaging partner sent a next_cursor that is not a short string."])
        if next_cursor == cursor:
            raise PartnerUnavailable("The messaging partner sent the same page twice; its paging is stuck.")
        cursor = next_cursor
        ctx.checkpoint({"cursor": cursor}, records)


def _page(body: Mapping[str, Any]) -> tuple[list[RecordUpsert], int]:
    """The page's records, and how many entries were not RSVPs as the contract describes them."""
    rsvps = body.get("rsvps")
    if not isinstance(rsvps, list):
        raise DriftDetected(["The messaging partner's RSVP list was not in the expected format."])
    records = [record for item in rsvps if (record := _record(item)) is not None]
    return records, len(rsvps) - len(records)


def _record(item: Any) -> RecordUpsert | None:
    if not isinstance(item, Mapping):
        return None
    guest_id, response, stamp = item.get("guest_id"), item.get("response"), item.get("updated_at")
    if not isinstance(guest_id, str) or not 0 < len(guest_id) <= 200 or response not in RESPONSES:
        return None
    updated = parse_timestamp(stamp) if isinstance(stamp, str) else None
    return rsvp_record(guest_id, str(response), updated)


def _drift(skipped: int) -> list[str]:
    if not skipped:
        return []
    noun = "entry" if skipped == 1 else "entries"
    return [
        f"The messaging partner sent {skipped} RSVP {noun} not in the expected format; they were skipped."
    ]
