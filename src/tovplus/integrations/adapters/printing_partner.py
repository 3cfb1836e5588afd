"""The printing partner: a stationery printer's order system.

Pull sync reads the partner account and the orders updated since the last
successful sync, page by page (``next_page_token``), committing each page with a
checkpoint so a run that dies mid-way resumes after the last stored page; an order
the printer reports as ``"deleted": true`` is a deletion. Callbacks push single order
status changes. Both store ``print_order`` records keyed by the partner's ``order_id``.

The sync state is ``{"updated_since": str|null}`` between runs and, mid-run, also
``{"page_token": str, "started_at": str}``: the next run asks for what changed since
the previous one started.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
    CheckContext,
    CheckResult,
    Direction,
    Mode,
    RecordUpsert,
    SyncContext,
    SyncResult,
)
from tovplus.integrations.fields import Field, FieldType
from tovplus.integrations.http import busy, unreachable
from tovplus.integrations.payloads import PayloadReader, format_timestamp, parse_timestamp
from tovplus.integrations.sync_state import RecordDelete
from tovplus.integrations.wording import Wording

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
        Field(
            "api_key",
            "API key",
            required=True,
            help="Issued by the printer: in its dashboard under Settings → API keys, create a key "
            "for TOV Plus and paste it here. Kept encrypted.",
        ),
    )
    supports_background_sync = True
    supports_inbound_callbacks = True
    default_sync_interval = timedelta(minutes=15)
    wording = Wording(
        capabilities={
            "orders.sync": "Fetches print orders",
            "orders.callbacks": "Hears about order changes at once",
            "guests.export": "Receives the guest list",
        },
        record_kinds={RECORD_KIND: "Print order"},
        statuses={
            "received": "Received",
            "proof_ready": "Proof ready to check",
            "approved": "Proof approved",
            "printing": "Printing",
            "shipped": "Shipped",
            "delivered": "Delivered",
        },
    )
    actions = (EXPORT_GUESTS,)

    # --- sync ----------------------------------------------------------------------

    def sync(self, ctx: SyncContext) -> SyncResult:
        account_id = str(ctx.config["account_id"])
        base = str(ctx.config["api_base_url"]).rstrip("/")
        headers = {"Authorization": f"Bearer {ctx.secrets['api_key']}", "Accept": "application/json"}
        account = _get_json(ctx.http, f"{base}/accounts/{account_id}", headers)
        drift = _account_drift(account, account_id)
        cursor = _Cursor.start(ctx)
        seen = 0
        while True:
            body = _get_json(ctx.http, f"{base}/accounts/{account_id}/orders", headers, cursor.params())
            orders = body.get("orders")
            if not isinstance(orders, list):
                raise PartnerUnavailable("The printer's order list was not in the expected format.")
            changes = [
                change
                for order in orders
                if isinstance(order, Mapping) and (change := _order_change(order)) is not None
            ]
            seen += len(changes)
            next_page = body.get("next_page_token")
            if not isinstance(next_page, str) or not next_page:
                summary = f"{seen} print orders updated"
                return SyncResult(records=changes, drift=drift, summary=summary, state=cursor.done())
            if next_page == cursor.page:
                raise PartnerUnavailable("The printer sent the same page twice; its paging is stuck.")
            cursor = cursor.after(next_page)
            ctx.checkpoint(cursor.state(), changes)

    # --- credential check ------------------------------------------------------------

    def check(self, ctx: CheckContext) -> CheckResult:
        """``GET {api_base_url}/accounts/{account_id}`` with the API key: 401/403 rejects the key,
        404 (or another account, or one not active) is drift; else the account it signs in to."""
        account_id = str(ctx.config["account_id"])
        base = str(ctx.config["api_base_url"]).rstrip("/")
        headers = {"Authorization": f"Bearer {ctx.secrets.get('api_key', '')}", "Accept": "application/json"}
        try:
            account = _get_json(ctx.http, f"{base}/accounts/{account_id}", headers)
        except DriftDetected:
            return CheckResult(
                drift=[f"The printer reports account {account_id!r} not found: check the Account ID."]
            )
        return CheckResult(
            summary=f"signed in as printer account {account_id}", drift=_account_drift(account, account_id)
        )

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


def _account_drift(account: Mapping[str, Any], account_id: str) -> list[str]:
    """What the printer's account answer says is wrong with the connection's settings."""
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
    return drift


def _get_json(
    http: httpx.Client, url: str, headers: Mapping[str, str], params: Mapping[str, str] | None = None
) -> Mapping[str, Any]:
    """GET a JSON object from the partner, mapping failures to the framework's typed errors."""
    try:
        response = http.get(url, headers=dict(headers), params=dict(params or {}))
    except httpx.HTTPError as exc:
        raise unreachable("the printer", exc) from exc
    if response.status_code in (401, 403):
        raise CredentialsRejected(
            "The printer rejected the API key: enter a current API key for this connection."
        )
    if response.status_code == 404:
        raise DriftDetected(["The printer does not know this account: check the Account ID."])
    if response.status_code == 429 or (response.status_code == 503 and "retry-after" in response.headers):
        raise busy("the printer", response)
    if response.status_code >= 400:
        raise PartnerUnavailable(f"The printer answered HTTP {response.status_code}.")
    try:
        body = response.json()
    except ValueError as exc:
        raise PartnerUnavailable("The printer's answer was not valid JSON.") from exc
    if not isinstance(body, Mapping):
        raise PartnerUnavailable("The printer's answer was not a JSON object.")
    return body


@dataclass(frozen=True, slots=True)
class _Cursor:
    """Where the order pull stands: the ``updated_since`` asked, the next page, when the pass began."""

    updated_since: str | None
    started_at: str
    page: str | None = None

    @staticmethod
    def start(ctx: SyncContext) -> _Cursor:
        """Resume a checkpointed pass, or begin one since the last run (everything on a full run)."""
        state = ctx.state if isinstance(ctx.state, Mapping) else {}
        now = format_timestamp(ctx.now)
        since = state.get("updated_since")
        since = since if isinstance(since, str) else None
        token, started = state.get("page_token"), state.get("started_at")
        if isinstance(token, str) and isinstance(started, str):
            return _Cursor(since, started, token)
        if since is None and not ctx.full and ctx.last_success_at is not None:
            since = format_timestamp(ctx.last_success_at)  # a connection synced before states existed
        return _Cursor(since, now)

    def params(self) -> dict[str, str]:
        params = {"updated_since": self.updated_since} if self.updated_since else {}
        return params | ({"page_token": self.page} if self.page else {})

    def after(self, token: str) -> _Cursor:
        return _Cursor(self.updated_since, self.started_at, token)

    def state(self) -> dict[str, Any]:
        return {
            "updated_since": self.updated_since,
            "page_token": self.page,
            "started_at": self.started_at,
        }

    def done(self) -> dict[str, Any]:
        """The state after the last page: the next run asks for what changed since this pass began."""
        return {"updated_since": self.started_at}


def _order_change(order: Mapping[str, Any]) -> RecordUpsert | RecordDelete | None:
    order_id = order.get("order_id")
    if order.get("deleted") is True and isinstance(order_id, str) and order_id:
        return RecordDelete(RECORD_KIND, order_id[:200], _updated_at(order))
    return _order_record(order)


def _updated_at(order: Mapping[str, Any]) -> Any:
    stamp = order.get("updated_at")
    return parse_timestamp(stamp) if isinstance(stamp, str) else None


def _order_record(order: Mapping[str, Any]) -> RecordUpsert | None:
    order_id, status = order.get("order_id"), order.get("status")
    if not isinstance(order_id, str) or not order_id or not isinstance(status, str):
        return None
    updated = _updated_at(order)
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
