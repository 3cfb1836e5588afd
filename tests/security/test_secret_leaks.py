"""No raw secret in any response, activity entry, log line or error message.

Distinctive secret values go through every route of the connection lifecycle, the
platform routes a key calls, the admin routes, and a set of bad requests that carry a
secret where an error message might echo it. Every response body and every log line
captured at DEBUG on the root logger (with the scrubber installed, as in production)
is then scanned for the raw values. An issued key may appear only in the response
that issued it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import Api
from tovplus.db.models import Base
from tovplus.integrations.redaction import install_scrubber
from tovplus.services.credentials import decrypt_connection_secrets


def distinctive(label: str) -> str:
    return f"SeKrEt-{label}-{uuid.uuid4().hex}"


@dataclass
class Capture:
    """Every response of the flow, and which issued key each may show."""

    api: Api
    responses: list[tuple[str, Any, str | None]] = field(default_factory=list)

    def call(self, label: str, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        r = self.api.client.request(method, path, headers=headers, **kwargs)
        assert r.status_code < 500, (label, r.text)
        issued = (
            r.json().get("issued_key")
            if r.headers.get("content-type", "").startswith("application/json")
            else None
        )
        self.responses.append((label, r, issued if isinstance(issued, str) else None))
        return r


def dump_database(api: Api) -> str:
    parts: list[str] = []
    with api.runtime.db.read() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)).all():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        parts.append(bytes(value).decode("latin-1"))
                    else:
                        parts.append(str(value))
    return "\n".join(parts)


@pytest.fixture
def scrubbed_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    # SQLAlchemy pins its own logger to WARNING; open it too, so SQL and its parameters are scanned
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    install_scrubber(logging.getLogger())
    return caplog


def run_flow(api: Api) -> tuple[Capture, dict[str, str], list[str]]:
    """Drive every route with secrets; returns the capture, the secrets and the issued keys."""
    cap = Capture(api)
    secrets = {
        name: distinctive(name)
        for name in (
            "create",
            "patched",
            "venue",
            "rejected_enable",
            "unknown_secret_field",
            "unknown_config_field",
            "action_key",
            "integration_key",
            "event_id",
            "state",
            "cursor",
            "kind_filter",
            "wrong_type",
            "malformed_json",
            "path_id",
            "bearer",
            "too_long",
            "nul",
        )
    }
    planner = api.user("planner")
    admin = api.user("admin")
    occasion = api.occasion(planner)
    api.event(planner, occasion)
    base = f"/v1/occasions/{occasion}/integrations"
    printing = {
        "integration_key": "printing_partner",
        "config": {"account_id": "acct-123", "api_base_url": "https://printer.example.com/api"},
    }

    # created, enabled, edited, rotated, revoked
    r = cap.call(
        "create",
        "POST",
        f"{base}/connections",
        planner,
        json={**printing, "secrets": {"api_key": secrets["create"]}, "state": "enabled"},
    )
    assert r.status_code == 201, r.text
    cid = r.json()["connection"]["id"]
    keys = [r.json()["issued_key"]]
    r = cap.call(
        "create venue",
        "POST",
        f"{base}/connections",
        planner,
        json={
            "integration_key": "venue_ops",
            "config": {"venue_id": "hall-7"},
            "secrets": {"api_token": secrets["venue"]},
        },
    )
    assert r.status_code == 201, r.text
    venue_id = r.json()["connection"]["id"]
    keys.append(r.json()["issued_key"])
    cap.call("overview", "GET", base, planner)
    cap.call("read", "GET", f"{base}/connections/{cid}", planner)
    placeholder = r.json()["connection"]["redacted_secrets"]["api_token"]
    assert (
        cap.call(
            "placeholder back",
            "PATCH",
            f"{base}/connections/{venue_id}",
            planner,
            json={"config": {"venue_id": "hall-8"}, "secrets": {"api_token": placeholder}},
        ).status_code
        == 200
    )
    assert (
        cap.call(
            "new secret",
            "PATCH",
            f"{base}/connections/{cid}",
            planner,
            json={"secrets": {"api_key": secrets["patched"]}},
        ).status_code
        == 200
    )
    assert (
        cap.call(
            "edit", "PATCH", f"{base}/connections/{cid}", planner, json={"config": {"account_id": "acct-456"}}
        ).status_code
        == 200
    )
    r = cap.call("rotate", "PATCH", f"{base}/connections/{cid}", planner, json={"rotate_key": True})
    assert r.status_code == 200, r.text
    keys.append(r.json()["issued_key"])
    key = keys[-1]
    for path in (
        f"/v1/occasions/{occasion}",
        f"/v1/occasions/{occasion}/events",
        f"/v1/occasions/{occasion}/guests",
        "/v1/integrations/me",
    ):
        assert cap.call(f"key {path}", "GET", path, key).status_code == 200
    cap.call("old key", "GET", "/v1/integrations/me", keys[0])
    cap.call("sync", "POST", f"{base}/connections/{cid}/sync", planner)
    cap.call("records", "GET", f"{base}/connections/{cid}/records", planner)
    cap.call("key on lifecycle route", "GET", base, key)

    # bad input that carries a secret where a message might echo it
    bad = [
        (
            "enable with errors",
            {
                **printing,
                "config": {},
                "secrets": {"api_key": secrets["rejected_enable"]},
                "state": "enabled",
            },
        ),
        (
            "unknown secret field",
            {
                **printing,
                "secrets": {"api_key": secrets["create"], "apikey2": secrets["unknown_secret_field"]},
            },
        ),
        (
            "unknown config field",
            {**printing, "config": {**printing["config"], "colour": secrets["unknown_config_field"]}},
        ),
        ("action key", {**printing, "action_keys": [secrets["action_key"]]}),
        (
            "integration key",
            {"integration_key": secrets["integration_key"], "secrets": {"api_key": secrets["create"]}},
        ),
        ("event id", {**printing, "scope": {"type": "event", "event_id": secrets["event_id"][:60]}}),
        ("state", {**printing, "state": secrets["state"]}),
        ("wrong type", {**printing, "secrets": {"api_key": [secrets["wrong_type"]]}}),
        ("too long", {**printing, "secrets": {"api_key": secrets["too_long"] * 200}}),
        ("nul", {**printing, "secrets": {"api_key": secrets["nul"] + "\x00"}}),
        ("masked", {**printing, "secrets": {"api_key": "••••••••" + secrets["create"][-4:]}}),
    ]
    for label, body in bad:
        r = cap.call(label, "POST", f"{base}/connections", planner, json=body)
        assert r.status_code in (403, 409, 422), (label, r.text)
        if label in ("integration key", "event id"):
            continue  # a PATCH cannot carry these
        r = cap.call(
            f"patch {label}",
            "PATCH",
            f"{base}/connections/{cid}",
            planner,
            json=patch_body(label, body),
        )
        assert r.status_code in (409, 422), (label, r.text)
    cap.call(
        "malformed json",
        "POST",
        f"{base}/connections",
        planner,
        content=('{"secrets": {"api_key": "' + secrets["malformed_json"] + '"').encode(),
        headers={"content-type": "application/json"},
    )
    cap.call("cursor", "GET", f"{base}/activity", planner, params={"cursor": secrets["cursor"]})
    cap.call(
        "admin kind", "GET", "/v1/admin/integrations/activity", admin, params={"kind": secrets["kind_filter"]}
    )
    cap.call(
        "admin key filter",
        "GET",
        "/v1/admin/integrations",
        admin,
        params={"integration_key": secrets["kind_filter"]},
    )
    cap.call("path id", "GET", f"{base}/connections/{secrets['path_id']}", planner)
    cap.call("path id patch", "PATCH", f"{base}/connections/{secrets['path_id']}", planner, json={})
    cap.call("bearer", "GET", base, secrets["bearer"])
    cap.call("bearer key shape", "GET", "/v1/integrations/me", f"tov_abc_{secrets['bearer']}")

    # the views after all of it, then revocation and the views again
    for when in ("before revoke", "after revoke"):
        cap.call(f"overview {when}", "GET", base, planner)
        cap.call(f"activity {when}", "GET", f"{base}/activity", planner, params={"limit": 200})
        cap.call(
            f"activity of connection {when}",
            "GET",
            f"{base}/activity",
            planner,
            params={"connection_id": cid},
        )
        cap.call(f"admin list {when}", "GET", "/v1/admin/integrations", admin)
        cap.call(
            f"admin activity {when}", "GET", "/v1/admin/integrations/activity", admin, params={"limit": 200}
        )
        cap.call(
            f"admin activity revoked {when}",
            "GET",
            "/v1/admin/integrations/activity",
            admin,
            params={"kind": "connection.revoked"},
        )
        if when == "before revoke":
            with api.runtime.db.read() as s:
                assert decrypt_connection_secrets(s, api.runtime.keyring, cid) == {
                    "api_key": secrets["patched"]
                }
                assert decrypt_connection_secrets(s, api.runtime.keyring, venue_id) == {
                    "api_token": secrets["venue"]
                }
            for target in (cid, venue_id):
                assert (
                    cap.call(
                        "revoke", "PATCH", f"{base}/connections/{target}", planner, json={"state": "revoked"}
                    ).status_code
                    == 200
                )
            cap.call("revoked key", "GET", "/v1/integrations/me", key)
    return cap, secrets, keys


def patch_body(label: str, body: dict[str, Any]) -> dict[str, Any]:
    """The PATCH twin of a bad create body (it must fail too)."""
    patch = {k: v for k, v in body.items() if k in ("config", "secrets", "action_keys", "state")}
    if label == "enable with errors":
        patch["config"] = {"account_id": None}  # would leave the enabled connection invalid
    return patch


def leaks_in(text: str, needles: dict[str, str]) -> list[str]:
    return [name for name, value in needles.items() if value in text]


def test_no_secret_in_any_response_log_line_or_activity(api, scrubbed_logs):
    cap, secrets, keys = run_flow(api)
    key_secrets = {f"issued key {i}": k for i, k in enumerate(keys)}
    key_secrets.update({f"secret part of issued key {i}": k.split("_", 2)[2] for i, k in enumerate(keys)})
    found = []
    for label, response, issued in cap.responses:
        allowed = {issued, issued.split("_", 2)[2]} if issued else set()
        needles = {**secrets, **{n: v for n, v in key_secrets.items() if v not in allowed}}
        found += [(label, leak) for leak in leaks_in(response.text, needles)]
        found += [(label, f"header {leak}") for leak in leaks_in(str(response.headers), needles)]
    assert found == []
    assert len(cap.responses) > 50

    # the test client's own request lines (httpx) are the caller's log, not the service's
    server_records = [rec for rec in scrubbed_logs.records if not rec.name.startswith(("httpx", "httpcore"))]
    assert any(rec.name.startswith("sqlalchemy") for rec in server_records)  # DEBUG really is on
    log_text = "\n".join(
        [rec.getMessage() for rec in server_records] + [rec.exc_text or "" for rec in server_records]
    )
    assert leaks_in(log_text, {**secrets, **key_secrets}) == []

    # nothing at rest either: secrets are encrypted, keys hashed, activity redacted
    assert leaks_in(dump_database(api), {**secrets, **key_secrets}) == []


def test_the_scan_sees_secrets_that_reach_a_log_line(api, scrubbed_logs):
    """The scan is not blind: a secret that does reach the logs unscrubbed is found."""
    value = distinctive("logged")
    logging.getLogger("tovplus.test").warning("a careless line with %s in it", value)
    log_text = "\n".join(rec.getMessage() for rec in scrubbed_logs.records)
    assert value in log_text
    # a stored secret is remembered by the scrubber and masked from then on
    planner = api.user("planner")
    occasion = api.occasion(planner)
    stored = distinctive("stored")
    assert api.connect(planner, occasion, secrets={"api_key": stored}).status_code == 201
    logging.getLogger("tovplus.test").warning("again with %s", stored)
    assert stored not in scrubbed_logs.records[-1].getMessage()
