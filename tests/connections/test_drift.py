"""Drift: an enabled connection whose stored settings no longer pass validation is degraded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, update

from tests.conftest import Api, assert_error
from tovplus.app import create_app
from tovplus.db.models import Connection, ConnectionSecret
from tovplus.integrations.adapters.printing_partner import PrintingPartnerAdapter
from tovplus.integrations.adapters.venue_ops import VenueOpsAdapter
from tovplus.integrations.fields import Field
from tovplus.integrations.registry import AdapterRegistry
from tovplus.runtime import Runtime, build_runtime
from tovplus.services.connections import refresh_health
from tovplus.services.credentials import decrypt_connection_secrets


class UpgradedPrintingPartner(PrintingPartnerAdapter):
    """The printing adapter after an upgrade that added a required setting."""

    config_fields = (
        *PrintingPartnerAdapter.config_fields,
        Field("region", "Print region", required=True, help="Where your cards are printed."),
    )


class SlimmedPrintingPartner(PrintingPartnerAdapter):
    """The printing adapter after an upgrade that dropped a setting and the API key."""

    config_fields = PrintingPartnerAdapter.config_fields[:1]
    secret_fields = (Field("token", "Access token", required=True),)


def registry(*adapters) -> AdapterRegistry:
    reg = AdapterRegistry()
    for adapter in adapters:
        reg.register(adapter)
    return reg


@pytest.fixture
def upgraded(settings) -> Iterator[tuple[Runtime, TestClient]]:
    """The same database served by a process whose printing adapter was upgraded."""
    rt = build_runtime(settings, registry=registry(UpgradedPrintingPartner, VenueOpsAdapter))
    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        yield rt, client
    rt.close()


def enabled_connection(api: Api) -> tuple[str, str, str]:
    planner = api.user("planner")
    occasion = api.occasion(planner)
    r = api.connect(planner, occasion, state="enabled")
    assert r.status_code == 201, r.text
    return planner, occasion, r.json()["connection"]["id"]


def view(client: TestClient, token: str, occasion: str, cid: str) -> dict:
    r = client.get(f"/v1/occasions/{occasion}/integrations", headers=Api.auth(token))
    assert r.status_code == 200, r.text
    (c,) = [c for c in r.json()["connections"] if c["id"] == cid]
    return c


def admin_view(client: TestClient, admin: str, **filters: str) -> dict:
    r = client.get("/v1/admin/integrations", params=filters, headers=Api.auth(admin))
    assert r.status_code == 200, r.text
    return r.json()


def test_adapter_upgrade_with_a_new_required_field_degrades_and_tells_what_to_fix(api, upgraded):
    planner, occasion, cid = enabled_connection(api)
    admin = api.user("admin")
    assert view(api.client, planner, occasion, cid)["health"] == "unknown"
    rt2, client2 = upgraded

    c = view(client2, planner, occasion, cid)
    assert c["state"] == "enabled"
    assert c["health"] == "degraded"
    assert len(c["health_reasons"]) == 1
    assert "Print region is required" in c["health_reasons"][0]
    assert "config.region" in c["health_reasons"][0]
    assert [e["field"] for e in c["validation"]["errors"]] == ["config.region"]
    listed = admin_view(client2, admin)["connections"]
    assert [x["health"] for x in listed if x["id"] == cid] == ["degraded"]

    # the stored health catches up once refreshed (done at start-up), so filters find it
    assert admin_view(client2, admin, health="degraded")["connections"] == []
    assert refresh_health(rt2) == 1
    assert refresh_health(rt2) == 0
    found = admin_view(client2, admin, health="degraded")
    assert [x["id"] for x in found["connections"]] == [cid]
    assert found["connections"][0]["health_reasons"] == c["health_reasons"]
    assert admin_view(client2, admin)["summary"]["by_health"]["degraded"] == 1

    # edits that do not fix it are refused, rotation and disabling still work
    r = client2.patch(
        f"/v1/occasions/{occasion}/integrations/connections/{cid}",
        json={"config": {"account_id": "acct-999"}},
        headers=Api.auth(planner),
    )
    error = assert_error(r, 409, "validation_failed")
    assert [f["field"] for f in error["fields"]] == ["config.region"]
    r = client2.patch(
        f"/v1/occasions/{occasion}/integrations/connections/{cid}",
        json={"rotate_key": True},
        headers=Api.auth(planner),
    )
    assert r.status_code == 200, r.text
    assert r.json()["connection"]["health"] == "degraded"

    # the planner supplies the new field: healthy again as far as validation goes
    r = client2.patch(
        f"/v1/occasions/{occasion}/integrations/connections/{cid}",
        json={"config": {"region": "eu-west"}},
        headers=Api.auth(planner),
    )
    assert r.status_code == 200, r.text
    fixed = r.json()["connection"]
    assert fixed["health"] == "unknown"
    assert fixed["health_reasons"] == []
    assert admin_view(client2, admin, health="degraded")["connections"] == []


def test_a_missing_secret_degrades_an_enabled_connection(api):
    planner, occasion, cid = enabled_connection(api)
    admin = api.user("admin")
    with api.runtime.db.write() as s:
        s.execute(delete(ConnectionSecret).where(ConnectionSecret.connection_id == cid))
    c = view(api.client, planner, occasion, cid)
    assert c["health"] == "degraded"
    assert c["redacted_secrets"] == {"api_key": None}
    assert any("API key is required" in reason for reason in c["health_reasons"])
    assert refresh_health(api.runtime) == 1
    found = admin_view(api.client, admin, health="degraded")
    assert [x["id"] for x in found["connections"]] == [cid]
    r = api.patch(planner, occasion, cid, secrets={"api_key": "pk_live_RESTOREDRESTORED"})
    assert r.status_code == 200, r.text
    assert r.json()["connection"]["health"] == "unknown"


def test_sync_reported_drift_is_shown_with_validation_drift_first(api, upgraded):
    planner, occasion, cid = enabled_connection(api)
    with api.runtime.db.write() as s:
        s.execute(
            update(Connection)
            .where(Connection.id == cid)
            .values(
                sync_health="degraded",
                sync_health_reasons=["The printer account is suspended, not active."],
            )
        )
    c = view(api.client, planner, occasion, cid)
    assert c["health"] == "degraded"
    assert c["health_reasons"] == ["The printer account is suspended, not active."]
    _rt2, client2 = upgraded
    c = view(client2, planner, occasion, cid)
    assert c["health"] == "degraded"
    assert len(c["health_reasons"]) == 2
    assert "Print region" in c["health_reasons"][0]
    assert c["health_reasons"][1] == "The printer account is suspended, not active."
    # a failing verdict stays failing (worse than degraded)
    with api.runtime.db.write() as s:
        s.execute(update(Connection).where(Connection.id == cid).values(sync_health="failing"))
    assert view(client2, planner, occasion, cid)["health"] == "failing"


def test_an_uninstalled_adapter_degrades_and_can_still_be_revoked(api, settings):
    planner, occasion, cid = enabled_connection(api)
    rt = build_runtime(settings, registry=registry(VenueOpsAdapter))
    try:
        with TestClient(create_app(rt), raise_server_exceptions=False) as client:
            c = view(client, planner, occasion, cid)
            assert c["health"] == "degraded"
            assert "not installed" in c["health_reasons"][0]
            url = f"/v1/occasions/{occasion}/integrations/connections/{cid}"
            r = client.patch(url, json={"config": {"account_id": "acct-1"}}, headers=Api.auth(planner))
            assert_error(r, 409, "integration_unavailable")
            r = client.patch(url, json={"state": "revoked"}, headers=Api.auth(planner))
            assert r.status_code == 200, r.text
            assert r.json()["connection"]["state"] == "revoked"
    finally:
        rt.close()


def test_keys_an_older_adapter_used_can_be_removed_with_null(api, settings):
    planner, occasion, cid = enabled_connection(api)
    rt = build_runtime(settings, registry=registry(SlimmedPrintingPartner, VenueOpsAdapter))
    try:
        with TestClient(create_app(rt), raise_server_exceptions=False) as client:
            c = view(client, planner, occasion, cid)
            assert "api_base_url" not in c["config"]  # only declared fields are shown
            assert c["redacted_secrets"] == {"token": None}
            assert [w["field"] for w in c["validation"]["warnings"]] == ["config.api_base_url"]
            assert c["health"] == "degraded"
            url = f"/v1/occasions/{occasion}/integrations/connections/{cid}"
            auth = Api.auth(planner)
            assert_error(client.patch(url, json={"config": {"colour": None}}, headers=auth), 422)
            assert_error(client.patch(url, json={"secrets": {"password": None}}, headers=auth), 422)
            r = client.patch(
                url,
                json={
                    "config": {"api_base_url": None},
                    "secrets": {"api_key": None, "token": "tok-0123456789abc"},
                },
                headers=auth,
            )
            assert r.status_code == 200, r.text
            fixed = r.json()["connection"]
            assert fixed["validation"] == {"errors": [], "warnings": []}
            assert fixed["health"] == "unknown"
        with rt.db.read() as s:
            row = s.get(Connection, cid)
            assert row.config == {"account_id": "acct-123"}
            assert decrypt_connection_secrets(s, rt.keyring, cid) == {"token": "tok-0123456789abc"}
    finally:
        rt.close()
