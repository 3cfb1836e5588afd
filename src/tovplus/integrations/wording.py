"""What an adapter's codes mean in plain words, for the planner's pages.

Codes stay what the API and the partner use (``guests.read``, ``proof_ready``); pages show the
label with the code in small type beside it. An adapter declares its own in ``Adapter.wording``;
the platform's action keys have labels here that an adapter may reword.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The platform's action keys, as a planner reads them on the grant checkboxes.
PLATFORM_ACTION_LABELS: Mapping[str, str] = {
    "occasion.read": "See the occasion's name and date",
    "events.read": "See the events (ceremony, dinner, …)",
    "guests.read": "See the guest list",
}


@dataclass(frozen=True, slots=True)
class Wording:
    """Plain labels for an adapter's codes, and where its partner's own setup docs live."""

    #: Action key -> label, over :data:`PLATFORM_ACTION_LABELS`.
    action_keys: Mapping[str, str] = field(default_factory=dict)
    #: Capability -> label (``orders.sync`` -> "Fetches print orders").
    capabilities: Mapping[str, str] = field(default_factory=dict)
    #: Record kind -> label (``print_order`` -> "Print order").
    record_kinds: Mapping[str, str] = field(default_factory=dict)
    #: A status value in the partner's records -> label (``proof_ready`` -> "Proof ready to check").
    statuses: Mapping[str, str] = field(default_factory=dict)
    #: The partner's own page on setting up the TOV Plus side (``https://``), if it has one.
    partner_docs_url: str | None = None

    def describe(self, action_keys: tuple[str, ...]) -> dict[str, Any]:
        """The catalog's ``labels`` object: every declared action key labelled."""
        return {
            "action_keys": {
                k: self.action_keys.get(k) or PLATFORM_ACTION_LABELS.get(k) or k for k in action_keys
            },
            "capabilities": dict(self.capabilities),
            "record_kinds": dict(self.record_kinds),
            "statuses": dict(self.statuses),
            "partner_docs_url": self.partner_docs_url,
        }
