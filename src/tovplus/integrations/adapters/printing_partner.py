"""The printing partner: a stationery printer's order system.

Pull sync reads the partner account and the orders updated since the last
successful sync; callbacks push single order status changes. Both store
``print_order`` records keyed by the partner's ``order_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx

from tovplus.errors import (
    CredentialsRejected,
    DriftDetected,
    PartnerUnavailable,
)
from tovplus.integrations.actions import ActionContext, ActionResult
from tovplus.integrations.adapters.printing_export import EXPORT_GUESTS, export_guests
from tovplus.integrations.contract import (
    Adapter,
    CallbackContext,
    CallbackResult,
    Direction,
    Mode,
    RecordUpsert,
    SyncContext,
    SyncResult,
)
from tovplus.integrations.fields import Field, FieldType
from tovplus.integrations.payloads import PayloadReader, format_timestamp, parse_timestamp

RECORD_KIND = "print_order"


class PrintingPartnerAdapter(Adapter):
    integration_key = "printing_partner"
    name = "Printing partner"
    description = (
        "Send guest and event details to a stationery printer and follow print orders "
        "as they move from proof to delivery."
    )
    category = "printing"
    direction = Direction.BIDIRECTIONAL
    mode = Mode.PULL
    capabilities = ("orders.sync", "orders.callbacks", "guests.export")
    action_keys = ("occasion.read", "events.read", "guests.read")
    config_fields = (
        Field(
            "account_id",
            "Account ID",
            required=True,
            help="Your account at the printer: 3 to 64 letters, digits, '-' or '_'.",
            pattern=r"[A-Za-z0-9_-]{3,64}",
            pattern_message="Account ID must be 3 to 64 letters, digits, '-' or '_'.",
            max_length=64,
        ),
        Field(
            "api_base_url",
            "API base URL",
            FieldType.URL,
            required=True,
            help="The printer's API address, e.g. https://api.printer.example/v1.",
        ),
    )
    secret_fields = (
        Field("api_key", "API key", required=True, help="Issued by the printer; kept encrypted."),
    )
    supports_background_sync = True
    supports_inbound_callbacks = True
    default_sync_interval = timedelta(minutes=15)
    actions = (EXPORT_GUESTS,)

    # --- sync ----------------------------------------------------------------------

    def sync(self, ctx: SyncContext) -> SyncResult:
        account_id = str(ctx.config["account_id"])
        base = str(ctx.config["api_base_url"]).rstrip("/")
        headers = {"Authorization": f"Bearer {ctx.secrets['api_key']}", "Accept": "application/json"}
        account = _get_json(ctx.http, f"{base}/accounts/{account_id}", headers)
        drift: list[str] = []
        if account.get("account_id") != account_id:
            drift.append(
                f"The printer reports account {account.get('account_id')!r} instead of {account_id!r}: "
                "check the Account ID."
            )
        if account.get("status") != "active":
            drift.append(
                f"The printer account is {account.get('status', 'in an unknown state')!s}, not active: "
                "contact the printer to reactivate it."
            )
        params = {"updated_since": format_timestamp(ctx.last_success_at)} if ctx.last_success_at else {}
        body = _get_json(ctx.http, f"{base}/accounts/{account_id}/orders", headers, params)
        orders = body.get("orders")
        if not isinstance(orders, list):
            raise PartnerUnavailable("The printer's order list was not in the expected format.")
        records = [
            record
            for order in orders
            if isinstance(order, Mapping) and (record := _order_record(order)) is not None
        ]
        return SyncResult(records=records, drift=drift, summary=f"{len(records)} print orders updated")

    # --- actions -------------------------------------------------------------------

    def perform(self, action_key: str, input: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
        if action_key == EXPORT_GUESTS.key:
            return export_guests(ctx)
        return super().perform(action_key, input, ctx)

    # --- callbacks -----------------------------------------------------------------

    def map_callback(self, payload: Any, ctx: CallbackContext) -> CallbackResult:
        reader = PayloadReader(payload)
        reader.literal("event", "order.status_changed")
        order_id = reader.string("order_id", max_length=200)
        status = reader.string("status", max_length=100)
        occurred_at = reader.timestamp("occurred_at")
        tracking = reader.optional_string("tracking_number", max_length=200)
        reader.finish()
        record = RecordUpsert(
            RECORD_KIND,
            order_id,
            {
                "order_id": order_id,
                "status": status,
                "tracking_number": tracking,
                "updated_at": format_timestamp(occurred_at),
            },
            occurred_at,
        )
        return CallbackResult(
            records=[record],
            summary=f"Order {order_id} is now {status}",
            details={"event": "order.status_changed", "order_id": order_id, "status": status},
        )


def _get_json(
    http: httpx.Client, url: str, headers: Mapping[str, str], params: Mapping[str, str] | None = None
) -> Mapping[str, Any]:
    """GET a JSON object from the partner, mapping failures to the framework's typed errors."""
    try:
        response = http.get(url, headers=dict(headers), params=dict(params or {}))
    except httpx.TimeoutException as exc:
        raise PartnerUnavailable("The printer did not answer in time.") from exc
    except httpx.HTTPError as exc:
        raise PartnerUnavailable(f"Could not reach the printer ({type(exc).__name__}).") from exc
    if response.status_code in (401, 403):
        raise CredentialsRejected(
            "The printer rejected the API key: enter a current API key for this connection."
        )
    if response.status_code == 404:
        raise DriftDetected(["The printer does not know this account: check the Account ID."])
    if response.status_code >= 400:
        raise PartnerUnavailable(f"The printer answered HTTP {response.status_code}.")
    try:
        body = response.json()
    except ValueError as exc:
        raise PartnerUnavailable("The printer's answer was not valid JSON.") from exc
    if not isinstance(body, Mapping):
        raise PartnerUnavailable("The printer's answer was not a JSON object.")
    return body


def _order_record(order: Mapping[str, Any]) -> RecordUpsert | None:
    order_id, status = order.get("order_id"), order.get("status")
    if not isinstance(order_id, str) or not order_id or not isinstance(status, str):
        return None
    updated = (
        parse_timestamp(order.get("updated_at", "")) if isinstance(order.get("updated_at"), str) else None
    )
    tracking = order.get("tracking_number")
    return RecordUpsert(
        RECORD_KIND,
        order_id[:200],
        {
            "order_id": order_id[:200],
            "status": status[:100],
            "tracking_number": tracking[:200] if isinstance(tracking, str) else None,
            "updated_at": format_timestamp(updated) if updated else None,
        },
        updated,
    )
