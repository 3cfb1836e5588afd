"""Calling the messaging partner: one JSON request, its failures mapped to the typed errors.

``ctx.http`` already sends the connection's bearer token (and refreshes it once after a 401), so
nothing here reads or sets a token: a 401 that still comes back means the grant is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from tovplus.errors import CredentialsRejected, DriftDetected, PartnerUnavailable
from tovplus.integrations.http import busy, unreachable

PARTNER = "the messaging partner"


def call(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    json: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Mapping[str, Any]:
    """Send one request and return its JSON object, or raise the typed error for what went wrong."""
    sent = {"Accept": "application/json", **dict(headers or {})}
    try:
        response = http.request(method, url, params=dict(params or {}), json=json, headers=sent)
    except httpx.HTTPError as exc:
        raise unreachable(PARTNER, exc) from exc
    status = response.status_code
    if status in (401, 403):
        raise CredentialsRejected(
            "The messaging partner refused access: press Reconnect to grant access again."
        )
    if status == 429 or (status == 503 and "retry-after" in response.headers):
        raise busy(PARTNER, response)
    if status >= 500:
        raise PartnerUnavailable(f"The messaging partner answered HTTP {status}.")
    if status >= 400:
        raise DriftDetected([f"The messaging partner refused the request (HTTP {status})."])
    try:
        body = response.json()
    except ValueError as exc:
        raise DriftDetected(["The messaging partner's answer was not valid JSON."]) from exc
    if not isinstance(body, Mapping):
        raise DriftDetected(["The messaging partner's answer was not a JSON object."])
    return body


def base_url(config: Mapping[str, Any]) -> str:
    """The partner's API address without a trailing slash."""
    return str(config["api_base_url"]).rstrip("/")
