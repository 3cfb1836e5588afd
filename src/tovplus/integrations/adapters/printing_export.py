"""The printing partner's ``export_guests`` action: send the occasion's guest list to the printer.

``PUT {api_base_url}/accounts/{account_id}/guest-lists/{occasion_id}`` with
``{"guests": [{"guest_id", "name"}]}`` and ``Idempotency-Key: <action run id>``; the printer
answers 200. Subscribed to ``guest.created`` and ``guest.updated``; needs ``guests.read``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from tovplus.errors import CredentialsRejected, DriftDetected, PartnerUnavailable
from tovplus.integrations.actions import ActionContext, ActionResult, ActionSpec

EXPORT_GUESTS = ActionSpec(
    key="export_guests",
    label="Send guest list",
    description=(
        "Sends the occasion's guest list (names only) to the printer, so invitations and place "
        "cards are printed for everyone. Runs by itself whenever a guest is added or changed."
    ),
    requires=("guests.read",),
    subscribes=("guest.created", "guest.updated"),
)


def export_guests(ctx: ActionContext) -> ActionResult:
    """PUT the current guest list (read as the run starts: a coalesced run carries every guest)."""
    guests = ctx.data.guests()
    base = str(ctx.config["api_base_url"]).rstrip("/")
    url = f"{base}/accounts/{ctx.config['account_id']}/guest-lists/{ctx.occasion_id}"
    headers = {
        "Authorization": f"Bearer {ctx.secrets['api_key']}",
        "Accept": "application/json",
        "Idempotency-Key": ctx.idempotency_key,
    }
    body = {"guests": [{"guest_id": g.guest_id, "name": g.name} for g in guests]}
    _put(ctx.http, url, headers, body)
    noun = "guest" if len(guests) == 1 else "guests"
    return ActionResult(summary=f"Sent {len(guests)} {noun} to the printer", details={"guests": len(guests)})


def _put(http: httpx.Client, url: str, headers: Mapping[str, str], body: Mapping[str, Any]) -> None:
    """PUT JSON to the printer, mapping failures to the framework's typed errors."""
    try:
        response = http.put(url, headers=dict(headers), json=dict(body))
    except httpx.TimeoutException as exc:
        raise PartnerUnavailable("The printer did not answer in time.") from exc
    except httpx.HTTPError as exc:
        raise PartnerUnavailable("Could not reach the printer.") from exc
    if response.status_code in (401, 403):
        raise CredentialsRejected(
            "The printer rejected the API key: enter a current API key for this connection."
        )
    if response.status_code == 404:
        raise DriftDetected(["The printer does not know this account: check the Account ID."])
    if response.status_code == 429 or response.status_code >= 500:
        raise PartnerUnavailable(f"The printer answered HTTP {response.status_code}.")
    if response.status_code >= 400:
        raise DriftDetected([f"The printer refused the guest list (HTTP {response.status_code})."])
