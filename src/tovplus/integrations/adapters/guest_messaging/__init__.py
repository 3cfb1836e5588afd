"""Guest messaging: invitations out, RSVPs back, through a messaging and RSVP service (OAuth2).

The planner grants access at the partner (``auth`` is OAuth2 with PKCE; the framework runs the
flow and the refresh, the adapter only sees ``ctx.http``, which sends the token). Sync pages
through the partner's RSVPs with a cursor (``rsvps.py``), callbacks report answers and
deliveries (``callbacks.py``), ``send_invitations`` pushes a message to the guests
(``invitations.py``), and the credential check asks who we are signed in as (``GET /me``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from tovplus.errors import DriftDetected
from tovplus.integrations.actions import ActionContext, ActionResult
from tovplus.integrations.adapters.guest_messaging.callbacks import map_messaging_callback
from tovplus.integrations.adapters.guest_messaging.invitations import SEND_INVITATIONS, send_invitations
from tovplus.integrations.adapters.guest_messaging.partner import base_url, call
from tovplus.integrations.adapters.guest_messaging.rsvps import RECORD_KIND, sync_rsvps
from tovplus.integrations.auth import OAuth2Auth
from tovplus.integrations.contract import (
    Adapter,
    CallbackContext,
    CallbackResult,
    CheckContext,
    CheckResult,
    Direction,
    Mode,
    SyncContext,
    SyncResult,
)
from tovplus.integrations.fields import Field, FieldType
from tovplus.integrations.wording import Wording

__all__ = ["RECORD_KIND", "SEND_INVITATIONS", "GuestMessagingAdapter"]


class GuestMessagingAdapter(Adapter):
    integration_key = "guest_messaging"
    name = "Guest messaging"
    description = (
        "Send invitations to your guests through a messaging service and see their RSVPs "
        "(yes, no or maybe) as they answer."
    )
    category = "messaging"
    direction = Direction.BIDIRECTIONAL
    mode = Mode.PUSH
    capabilities = ("rsvps.sync", "rsvps.callbacks", "invitations.send")
    action_keys = ("occasion.read", "guests.read")
    config_fields = (
        Field(
            "sender_name",
            "Sender name",
            required=True,
            help="Who the invitations are from, as guests see it: 1 to 60 characters.",
            min_length=1,
            max_length=60,
        ),
        Field(
            "api_base_url",
            "API base URL",
            FieldType.URL,
            required=True,
            help="The messaging service's API address, e.g. https://api.messaging.example/v1.",
        ),
        Field(
            "oauth_base_url",
            "Sign-in address",
            FieldType.URL,
            required=True,
            help="Where the messaging service's /oauth/authorize and /oauth/token live.",
        ),
    )
    auth = OAuth2Auth(
        "{oauth_base_url}/oauth/authorize",
        "{oauth_base_url}/oauth/token",
        scopes=("messages.send", "rsvps.read"),
    )
    supports_background_sync = True
    supports_inbound_callbacks = True
    default_sync_interval = timedelta(minutes=15)
    actions = (SEND_INVITATIONS,)
    wording = Wording(
        capabilities={
            "rsvps.sync": "Fetches your guests' RSVPs",
            "rsvps.callbacks": "Hears about RSVPs and deliveries at once",
            "invitations.send": "Sends invitations to your guests",
        },
        record_kinds={RECORD_KIND: "RSVP"},
        statuses={"yes": "Coming", "no": "Not coming", "maybe": "Maybe"},
    )

    def sync(self, ctx: SyncContext) -> SyncResult:
        return sync_rsvps(ctx)

    def map_callback(self, payload: Any, ctx: CallbackContext) -> CallbackResult:
        return map_messaging_callback(payload)

    def perform(self, action_key: str, input: Mapping[str, Any], ctx: ActionContext) -> ActionResult:
        if action_key == SEND_INVITATIONS.key:
            return send_invitations(input, ctx)
        return super().perform(action_key, input, ctx)

    def check(self, ctx: CheckContext) -> CheckResult:
        """``GET {api_base_url}/me``: the account the grant belongs to."""
        account = call(ctx.http, "GET", f"{base_url(ctx.config)}/me").get("account")
        if not isinstance(account, str) or not account:
            raise DriftDetected(["The messaging partner did not say which account access was granted for."])
        return CheckResult(summary=f"Signed in to the messaging service as {account[:200]}")
