"""What an endpoint's owner does to it: change it (url, event types, enabled), delete it, rotate
its signing secret (with an overlap in which both secrets sign), and send it a test event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from tovplus.db.models import WebhookDelivery, WebhookEndpoint
from tovplus.db.states import DeliveryState, EndpointState
from tovplus.db.types import utcnow
from tovplus.errors import Conflict, NotFound
from tovplus.integrations.payloads import format_timestamp
from tovplus.runtime import Runtime
from tovplus.services import activity, credentials
from tovplus.services.auth import MANAGE, Caller, authorize, is_id, require_admin
from tovplus.services.webhooks.endpoints import check_endpoint_input, new_signing_secret
from tovplus.services.webhooks.outbox import dispatch_after_commit, emit_event
from tovplus.services.webhooks.views import WebhookEndpointOut, endpoint_view

#: How long the secret a rotation replaced keeps signing deliveries beside the new one.
ROTATION_OVERLAP = timedelta(hours=24)
TEST_EVENT = "webhook.test"


@dataclass(frozen=True, slots=True)
class EndpointPatch:
    """A PATCH of an endpoint; ``None`` leaves a field as it is."""

    url: str | None = None
    event_types: list[str] | None = None
    enabled: bool | None = None


def load_endpoint(session: Session, caller: Caller, occasion_id: str, endpoint_id: str) -> WebhookEndpoint:
    """The occasion's (not deleted) endpoint, after checking the caller may manage the occasion."""
    authorize(session, caller, MANAGE, occasion_id)
    endpoint = session.get(WebhookEndpoint, endpoint_id) if is_id(endpoint_id) else None
    if endpoint is None or endpoint.occasion_id != occasion_id or endpoint.deleted_at is not None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def require_active(endpoint: WebhookEndpoint) -> None:
    """409 unless the endpoint is active (a disabled endpoint is sent nothing)."""
    if endpoint.state != EndpointState.ACTIVE:
        raise Conflict("The webhook endpoint is disabled; enable it first.")


def cancel_pending(session: Session, endpoint_id: str) -> int:
    """Cancel the endpoint's pending (and in-flight) deliveries; returns how many."""
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.state.in_((DeliveryState.PENDING, DeliveryState.DELIVERING)),
        )
        .values(state=DeliveryState.CANCELLED, next_attempt_at=None, lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def update_endpoint(
    rt: Runtime, caller: Caller, occasion_id: str, endpoint_id: str, patch: EndpointPatch
) -> WebhookEndpointOut:
    """Change url, event types or enabled. Re-enabling clears the failure record (``failing_since``,
    the reason); disabling cancels what is pending."""
    with rt.db.write() as session:
        endpoint = load_endpoint(session, caller, occasion_id, endpoint_id)
        url = patch.url if patch.url is not None else endpoint.url
        types = patch.event_types if patch.event_types is not None else list(endpoint.event_types or [])
        types = check_endpoint_input(url, types, allow_private=rt.settings.allow_private_urls)
        changed = [
            name
            for name, new, old in (("url", url, endpoint.url), ("event_types", types, endpoint.event_types))
            if new != old
        ]
        endpoint.url, endpoint.event_types = url, types
        now = utcnow()
        if patch.enabled is True and endpoint.state != EndpointState.ACTIVE:
            _enable(endpoint)
            changed.append("enabled")
        elif patch.enabled is False and endpoint.state == EndpointState.ACTIVE:
            _disable(session, endpoint, caller, now)
            changed.append("disabled")
        if changed:
            _record(
                session,
                caller,
                endpoint,
                "webhook.endpoint_updated",
                f"Webhook endpoint {url} changed: {', '.join(changed)}",
                {"changed": changed},
            )
        session.flush()
        return endpoint_view(endpoint)


def _enable(endpoint: WebhookEndpoint) -> None:
    endpoint.state = EndpointState.ACTIVE
    endpoint.failing_since = None
    endpoint.disabled_reason = None
    endpoint.disabled_by = None
    endpoint.disabled_at = None


def _disable(session: Session, endpoint: WebhookEndpoint, caller: Caller, now: datetime) -> None:
    endpoint.state = EndpointState.DISABLED
    endpoint.disabled_reason = "Disabled by its owner."
    endpoint.disabled_by = caller.subject_id
    endpoint.disabled_at = now
    cancel_pending(session, endpoint.id)


def delete_endpoint(rt: Runtime, caller: Caller, occasion_id: str, endpoint_id: str) -> None:
    """Delete the endpoint: it gets nothing further and its pending deliveries are cancelled
    (the row stays, marked deleted, so its log can still be read by support)."""
    with rt.db.write() as session:
        endpoint = load_endpoint(session, caller, occasion_id, endpoint_id)
        now = utcnow()
        endpoint.deleted_at = now
        endpoint.state = EndpointState.DISABLED
        endpoint.disabled_reason = "Deleted."
        endpoint.disabled_by, endpoint.disabled_at = caller.subject_id, now
        cancelled = cancel_pending(session, endpoint.id)
        _record(
            session,
            caller,
            endpoint,
            "webhook.endpoint_deleted",
            f"Webhook endpoint {endpoint.url} was deleted",
            {"cancelled": cancelled},
        )


def rotate_secret(rt: Runtime, caller: Caller, occasion_id: str, endpoint_id: str) -> str:
    """A new signing secret (returned this once); for :data:`ROTATION_OVERLAP` every delivery
    carries a signature with the new secret first and one with the old one after it."""
    with rt.db.write() as session:
        endpoint = load_endpoint(session, caller, occasion_id, endpoint_id)
        old = credentials.open_endpoint_secret(rt.keyring, endpoint)
        new = new_signing_secret()
        now = utcnow()
        previous = credentials.seal_previous_endpoint_secret(rt.keyring, endpoint.id, old)
        sealed = credentials.seal_endpoint_secret(rt.keyring, endpoint.id, new)
        endpoint.previous_secret_key_id = previous.key_id
        endpoint.previous_secret_nonce = previous.nonce
        endpoint.previous_secret_ciphertext = previous.ciphertext
        endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
        endpoint.secret_key_id, endpoint.secret_nonce = sealed.key_id, sealed.nonce
        endpoint.secret_ciphertext = sealed.ciphertext
        until = endpoint.previous_secret_expires_at
        _record(
            session,
            caller,
            endpoint,
            "webhook.secret_rotated",
            f"Webhook endpoint {endpoint.url} has a new signing secret; "
            f"the old one also signs until {until:%Y-%m-%d %H:%M} UTC",
            {"previous_secret_expires_at": format_timestamp(until)},
        )
    return new


def send_test(rt: Runtime, caller: Caller, occasion_id: str, endpoint_id: str) -> str:
    """Queue a ``webhook.test`` event to this endpoint alone; returns its ``webhook-id``."""
    with rt.db.write() as session:
        endpoint = load_endpoint(session, caller, occasion_id, endpoint_id)
        require_active(endpoint)
        data = {
            "connection_id": None,
            "integration_key": None,
            "occasion_id": occasion_id,
            "endpoint_id": endpoint.id,
        }
        ids = emit_event(
            session, occasion_id=occasion_id, event_type=TEST_EVENT, data=data, endpoint_ids=[endpoint.id]
        )
        _record(
            session,
            caller,
            endpoint,
            "webhook.test_sent",
            f"A test event was sent to webhook endpoint {endpoint.url}",
            {"webhook_id": ids[0]},
        )
        dispatch_after_commit(session, rt, ids)
    return ids[0]


def _record(
    session: Session,
    caller: Caller,
    endpoint: WebhookEndpoint,
    kind: str,
    summary: str,
    details: dict[str, object],
) -> None:
    activity.record(
        session,
        kind=kind,
        actor=caller.subject_id,
        summary=summary,
        occasion_id=endpoint.occasion_id,
        details={"endpoint_id": endpoint.id, **details},
    )


def failing_endpoint_count(rt: Runtime, caller: Caller) -> int:
    """How many endpoints on the platform are failing or were disabled by the system (admins)."""
    require_admin(caller)
    with rt.db.read() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(WebhookEndpoint)
                .where(
                    WebhookEndpoint.deleted_at.is_(None),
                    or_(
                        WebhookEndpoint.failing_since.is_not(None),
                        WebhookEndpoint.disabled_by == "system",
                    ),
                )
            )
            or 0
        )
