"""The one error hierarchy of TOV Plus.

Every error the framework, the services or an adapter raises on purpose is a
:class:`TovPlusError`. Each class carries a stable machine ``code``; classes map
to HTTP statuses in exactly one place (:func:`status_for`, used by the API and the
pages alike), the worker maps them to retry decisions, and the pages show their ``message``.

This module imports nothing from the project, so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldIssue:
    """One problem with one input field, e.g. ``config.account_id`` is ``required``."""

    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class TovPlusError(Exception):
    """Base of every deliberate error. ``message`` is safe to show to the caller."""

    code: str = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: Sequence[FieldIssue] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.fields: tuple[FieldIssue, ...] = tuple(fields)


class ConfigurationError(TovPlusError):
    """The process is configured wrongly (settings, key files, plugins)."""

    code = "configuration_error"


# --- caller-facing errors ---------------------------------------------------------


class MalformedRequest(TovPlusError):
    """The request could not be parsed at all (e.g. malformed JSON)."""

    code = "malformed_request"


class InvalidState(MalformedRequest):
    """An OAuth2 callback whose ``state`` is missing, used, expired or not the caller's (400)."""

    code = "invalid_state"


class Unauthenticated(TovPlusError):
    """No credentials, or credentials that do not identify anyone (any more)."""

    code = "unauthenticated"


class Forbidden(TovPlusError):
    """The caller is known but may not do this."""

    code = "forbidden"


class NotFound(TovPlusError):
    """Unknown resource, or one the caller may not see."""

    code = "not_found"


class Conflict(TovPlusError):
    """The request conflicts with the resource's current state."""

    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class ConnectionRevoked(Conflict):
    code = "connection_revoked"


class CheckNotSupported(Conflict):
    """The connection's adapter has no live credential check (or is not installed any more)."""

    code = "check_not_supported"


class IntegrationSuspended(Conflict):
    """An admin has suspended every connection of this adapter (the kill switch)."""

    code = "integration_suspended"


class ValidationFailed(Conflict):
    """Validation errors block the requested state (e.g. enabling)."""

    code = "validation_failed"


class PayloadTooLarge(TovPlusError):
    code = "payload_too_large"


class InvalidInput(TovPlusError):
    """Well-formed but invalid input."""

    code = "invalid_input"


class RateLimited(TovPlusError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- errors an adapter raises --------------------------------------------------------


class AdapterError(TovPlusError):
    """Base of the typed errors an adapter raises from ``sync`` or ``map_callback``."""

    code = "adapter_error"


class CredentialsRejected(AdapterError):
    """The partner refused our credentials: do not retry, ask the planner to fix them."""

    code = "credentials_rejected"


class PartnerUnavailable(AdapterError):
    """A transient failure (5xx, 429, timeout, refused connection): retry with backoff.

    ``retry_after`` (seconds) is the partner's own ``Retry-After``: the next attempt waits at
    least that long, even when the backoff delay is shorter.
    """

    code = "partner_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DriftDetected(AdapterError):
    """The partner's view no longer matches the connection's configuration."""

    code = "drift_detected"

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__("; ".join(reasons) or "Configuration drift detected.")
        self.reasons: tuple[str, ...] = tuple(reasons)


class CallbackRejected(AdapterError):
    """The adapter refuses an inbound payload; ``fields`` says why."""

    code = "callback_rejected"


# --- HTTP statuses ---------------------------------------------------------------------

#: The one mapping from error classes to HTTP statuses (the first match wins).
STATUS_BY_ERROR: list[tuple[type[TovPlusError], int]] = [
    (MalformedRequest, 400),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (InvalidInput, 422),
    (CallbackRejected, 422),
    (RateLimited, 429),
]


def status_for(exc: TovPlusError) -> int:
    """The HTTP status an error answers with (500 for one no caller should see)."""
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500
