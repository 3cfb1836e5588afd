"""The occasion's webhooks on its integrations page (the section's data) and one endpoint's page:
its message log with resend, recover, rotate, test, enable/disable, delete. Also the "Needs
attention" notices (the list's data and dismissing one)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from tovplus.errors import Conflict, FieldIssue, InvalidInput
from tovplus.services import notifications, webhooks
from tovplus.web import forms
from tovplus.web.security import Flash
from tovplus.web.urls import integrations_url
from tovplus.web.visit import FormDep, Visit, page, visit

router = APIRouter(include_in_schema=False)
_BASE = "/occasions/{occasion_id}/integrations/webhooks"
_ONE = _BASE + "/{endpoint_id}"
LOG_PAGE_SIZE = 50


def endpoint_url(occasion_id: str, endpoint_id: str) -> str:
    """One webhook endpoint's page."""
    return f"{integrations_url(occasion_id)}/webhooks/{quote(endpoint_id, safe='')}"


def section(v: Visit, occasion_id: str) -> dict[str, Any]:
    """What the integrations page's webhooks section and "Needs attention" list show."""
    page_ = webhooks.list_endpoints(v.rt, v.signed_in, occasion_id, limit=50)
    return {
        "endpoints": page_.items,
        "event_types": webhooks.EVENT_TYPES,
        "notices": notifications.open_notices(v.rt, v.signed_in, occasion_id=occasion_id),
    }


def _endpoint_page(
    v: Visit, occasion_id: str, endpoint_id: str, *, signing_secret: str | None = None, status: int = 200
) -> Response:
    endpoints = webhooks.list_endpoints(v.rt, v.signed_in, occasion_id, limit=200).items
    endpoint = next((e for e in endpoints if e.id == endpoint_id), None)
    if endpoint is None:
        webhooks.list_deliveries(v.rt, v.signed_in, occasion_id, endpoint_id, limit=1)  # 404 the usual way
        raise Conflict("No such webhook endpoint.")
    log = webhooks.list_deliveries(
        v.rt,
        v.signed_in,
        occasion_id,
        endpoint_id,
        limit=LOG_PAGE_SIZE,
        cursor=v.request.query_params.get("cursor"),
    )
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    return v.page(
        "webhook_endpoint.html",
        status=status,
        title="Webhook endpoint",
        occasion_id=occasion_id,
        endpoint=endpoint,
        deliveries=log.items,
        next_cursor=log.next_cursor,
        signing_secret=signing_secret,
        since_default=since,
        url=endpoint_url(occasion_id, endpoint_id),
        back=integrations_url(occasion_id),
    )


@router.get(_ONE)
@page
def endpoint_page(request: Request, occasion_id: str, endpoint_id: str) -> Response:
    """The endpoint, its state and its message log."""
    return _endpoint_page(visit(request), occasion_id, endpoint_id)


@router.post(_BASE)
@page
def create(request: Request, occasion_id: str, form: FormDep) -> Response:
    """Add an endpoint and show its signing secret, this once."""
    v = visit(request)
    v.check_csrf(form)
    types = [str(t) for t in form.getlist("event_types")]
    try:
        endpoint, secret = webhooks.create_endpoint(
            v.rt, v.signed_in, occasion_id, url=forms.text(form, "url").strip(), event_types=types
        )
    except InvalidInput as exc:
        detail = "; ".join(f.message for f in exc.fields) or exc.message
        return v.redirect(
            integrations_url(occasion_id) + "#webhooks", Flash(error=f"No endpoint was added: {detail}")
        )
    return _endpoint_page(v, occasion_id, endpoint.id, signing_secret=secret, status=201)


@router.post(_ONE + "/rotate")
@page
def rotate(request: Request, occasion_id: str, endpoint_id: str, form: FormDep) -> Response:
    """A new signing secret (shown this once); the old one keeps signing for 24 hours."""
    v = visit(request)
    v.check_csrf(form)
    secret = webhooks.rotate_secret(v.rt, v.signed_in, occasion_id, endpoint_id)
    return _endpoint_page(v, occasion_id, endpoint_id, signing_secret=secret)


def _act(request: Request, occasion_id: str, endpoint_id: str, form: Any, do: Any, notice: str) -> Response:
    v = visit(request)
    v.check_csrf(form)
    url = endpoint_url(occasion_id, endpoint_id)
    try:
        said = do(v)
    except (Conflict, InvalidInput) as exc:
        return v.redirect(url, Flash(error=exc.message))
    return v.redirect(url, Flash(notice=notice.format(said)))


@router.post(_ONE + "/test")
@page
def send_test(request: Request, occasion_id: str, endpoint_id: str, form: FormDep) -> Response:
    """Send a ``webhook.test`` event to this endpoint."""
    return _act(
        request,
        occasion_id,
        endpoint_id,
        form,
        lambda v: webhooks.send_test(v.rt, v.signed_in, occasion_id, endpoint_id),
        "A test event was queued ({}); it appears in the log below.",
    )


@router.post(_ONE + "/deliveries/{webhook_id}/resend")
@page
def resend(request: Request, occasion_id: str, endpoint_id: str, webhook_id: str, form: FormDep) -> Response:
    """Send one delivery again, with the same webhook-id."""
    return _act(
        request,
        occasion_id,
        endpoint_id,
        form,
        lambda v: webhooks.resend(v.rt, v.signed_in, occasion_id, endpoint_id, webhook_id),
        f"Delivery {webhook_id} was queued again.",
    )


def _since(form: Any) -> datetime:
    raw = forms.text(form, "since").strip()
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(
            "Give the time to recover from.", fields=[FieldIssue("since", "invalid", "")]
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@router.post(_ONE + "/recover")
@page
def recover(request: Request, occasion_id: str, endpoint_id: str, form: FormDep) -> Response:
    """Queue again every failed delivery since the given time."""
    return _act(
        request,
        occasion_id,
        endpoint_id,
        form,
        lambda v: webhooks.recover(v.rt, v.signed_in, occasion_id, endpoint_id, _since(form)),
        "{} failed deliveries were queued again.",
    )


@router.post(_ONE + "/state")
@page
def change_state(request: Request, occasion_id: str, endpoint_id: str, form: FormDep) -> Response:
    """Enable (clearing the failure record) or disable the endpoint."""
    enabled = forms.text(form, "enabled") == "true"
    return _act(
        request,
        occasion_id,
        endpoint_id,
        form,
        lambda v: webhooks.update_endpoint(
            v.rt, v.signed_in, occasion_id, endpoint_id, webhooks.EndpointPatch(enabled=enabled)
        ),
        "The endpoint is enabled." if enabled else "The endpoint is disabled; nothing is sent to it.",
    )


@router.post(_ONE + "/delete")
@page
def delete(request: Request, occasion_id: str, endpoint_id: str, form: FormDep) -> Response:
    """Delete the endpoint; what was pending for it is cancelled."""
    v = visit(request)
    v.check_csrf(form)
    webhooks.delete_endpoint(v.rt, v.signed_in, occasion_id, endpoint_id)
    return v.redirect(
        integrations_url(occasion_id) + "#webhooks", Flash(notice="The webhook endpoint was deleted.")
    )


@router.post("/occasions/{occasion_id}/notices/{notice_id}/dismiss")
@page
def dismiss(request: Request, occasion_id: str, notice_id: str, form: FormDep) -> Response:
    """Clear one "Needs attention" notice; back to the occasions list when dismissed there."""
    v = visit(request)
    v.check_csrf(form)
    notifications.dismiss(v.rt, v.signed_in, occasion_id, notice_id)
    return v.redirect("/" if form.get("back_to") == "/" else integrations_url(occasion_id))
