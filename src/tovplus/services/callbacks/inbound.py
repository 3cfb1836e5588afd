"""What a callback request brings in and what it gets back."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

SECRET_HEADER = "x-tov-integration-secret"  # noqa: S105 - a header name
DELIVERY_HEADER = "x-tov-delivery-id"
MAX_DELIVERY_ID = 200
MAX_ID_LENGTH = 40


@dataclass(frozen=True, slots=True)
class InboundCallback:
    """One callback request as the route read it."""

    integration_key: str
    connection_id: str
    body: bytes
    payload: Any
    secret: str | None = field(default=None, repr=False)
    delivery_id: str | None = None
    webhook_id: str | None = None
    webhook_timestamp: str | None = None
    webhook_signature: str | None = field(default=None, repr=False)
    #: Unix time the request arrived (signature tolerance is judged against it).
    received_at: float = field(default_factory=time.time)

    @property
    def effective_delivery_id(self) -> str | None:
        """``x-tov-delivery-id``, else the Standard Webhooks ``webhook-id``."""
        return self.delivery_id if self.delivery_id is not None else self.webhook_id


@dataclass(frozen=True, slots=True)
class CallbackOutcome:
    """An answered callback: ``accepted`` (202) or a ``duplicate`` of an accepted one (200)."""

    status: Literal["accepted", "duplicate"]
    activity_id: str

    @property
    def http_status(self) -> int:
        """202 for ``accepted``, 200 for ``duplicate``."""
        return 202 if self.status == "accepted" else 200

    def as_dict(self) -> dict[str, str]:
        """The response body."""
        return {"status": self.status, "activity_id": self.activity_id}
