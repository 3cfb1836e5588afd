"""Standard Webhooks signed callbacks (an adapter's alternative to the shared-secret header).

A test adapter declares ``callback_auth = CallbackAuth.STANDARD_WEBHOOKS``; the
signatures are computed here from the connection's callback signing secret (shown once
beside the issued key) with the Standard Webhooks algorithm, independently of the
service's own helpers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import Api, assert_error
from tovplus.app import create_app
from tovplus.db.models import Activity, SyncedRecord
from tovplus.integrations.contract import (
    Adapter,
    CallbackAuth,
    CallbackContext,
    CallbackResult,
    Direction,
    Mode,
    RecordUpsert,
)
from tovplus.integrations.payloads import PayloadReader
from tovplus.integrations.registry import AdapterRegistry, builtin_adapters
from tovplus.runtime import build_runtime
from tovplus.settings import Settings


class SignedPartner(Adapter):
    integration_key = "signed_partner"
    name = "Signed partner"
    description = "A test partner that signs its callbacks the Standard Webhooks way."
    category = "testing"
    direction = Direction.INBOUND
    mode = Mode.CALLBACK
    action_keys = ("occasion.read",)
    supports_inbound_callbacks = True
    callback_auth = CallbackAuth.STANDARD_WEBHOOKS

    def map_callback(self, payload: Any, ctx: CallbackContext) -> CallbackResult:
        reader = PayloadReader(payload)
        item = reader.string("item_id")
        value = reader.string("value")
        reader.finish()
        return CallbackResult([RecordUpsert("item", item, {"value": value})], f"Item {item} is {value}")


class QuietPartner(Adapter):
    integration_key = "quiet_partner"
    name = "Quiet partner"
    description = "A test partner without inbound callbacks."
    category = "testing"
    direction = Direction.OUTBOUND
    mode = Mode.MANUAL
    action_keys = ("occasion.read",)


@pytest.fixture
def signed_api(settings: Settings) -> Iterator[Api]:
    registry = AdapterRegistry()
    for adapter in (*builtin_adapters(), SignedPartner, QuietPartner):
        registry.register(adapter)
    rt = build_runtime(settings, registry=registry)
    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        yield Api(client, rt)
    rt.close()


def connect(api: Api, integration_key: str = "signed_partner") -> tuple[str, str, str, str, str | None]:
    """(token, occasion id, connection id, issued key, callback signing secret)."""
    token = api.user()
    occasion_id = api.occasion(token)
    body: dict[str, Any] = {"integration_key": integration_key, "state": "enabled"}
    if integration_key != "printing_partner":
        body.update(config={}, secrets={})
    r = api.connect(token, occasion_id, **body)
    assert r.status_code == 201, r.text
    body = r.json()
    return (
        token,
        occasion_id,
        body["connection"]["id"],
        body["issued_key"],
        body.get("callback_signing_secret"),
    )


def standard_webhooks_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks algorithm, written out: the key is the base64 part of ``whsec_…``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def post(
    api: Api,
    connection_id: str,
    body: bytes,
    *,
    msg_id: str = "msg_1",
    timestamp: int | None = None,
    signature: str | None = None,
    secret: str | None = None,
    integration_key: str = "signed_partner",
    extra: dict[str, str] | None = None,
) -> Any:
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "content-type": "application/json"}
    if signature is None and secret is not None:
        signature = standard_webhooks_signature(secret, msg_id, stamp, body)
    if signature is not None:
        headers["webhook-signature"] = signature
    headers.update(extra or {})
    return api.client.post(
        f"/v1/integrations/callbacks/{integration_key}/{connection_id}", content=body, headers=headers
    )


BODY = json.dumps({"item_id": "it-1", "value": "blue"}).encode()


def records(api: Api) -> int:
    with api.runtime.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(SyncedRecord)) or 0)


def test_signed_callback_is_accepted_and_a_replay_is_a_duplicate(signed_api: Api):
    _, _, conn_id, _, secret = connect(signed_api)
    r = post(signed_api, conn_id, BODY, msg_id="msg_a", secret=secret)
    assert r.status_code == 202, r.text
    assert records(signed_api) == 1
    # the very same signed message again (within tolerance): webhook-id is the delivery id
    again = post(signed_api, conn_id, BODY, msg_id="msg_a", secret=secret)
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "activity_id": r.json()["activity_id"]}


def test_whsec_form_works_with_the_standard_algorithm(signed_api: Api):
    _, _, conn_id, _, secret = connect(signed_api)
    assert secret is not None
    assert secret.startswith("whsec_")
    raw = base64.b64decode(secret.removeprefix("whsec_"))
    stamp = int(time.time())
    mac = hmac.new(raw, f"msg_w.{stamp}.".encode() + BODY, hashlib.sha256).digest()
    # several signatures may be sent (key rollover); one valid is enough
    sig = "v1,AAAA v1," + base64.b64encode(mac).decode()
    assert post(signed_api, conn_id, BODY, msg_id="msg_w", timestamp=stamp, signature=sig).status_code == 202


def test_old_and_future_timestamps_are_refused(signed_api: Api):
    _, _, conn_id, _, secret = connect(signed_api)
    now = int(time.time())
    # margins of 30 s on both sides: seconds may pass between this line and the server's check
    for stamp in (now - 330, now - 3600, now + 330):
        r = post(signed_api, conn_id, BODY, msg_id=f"m{stamp}", timestamp=stamp, secret=secret)
        assert_error(r, 401, "unauthenticated")
    # just inside the tolerance is fine
    assert (
        post(signed_api, conn_id, BODY, msg_id="m-edge", timestamp=now - 270, secret=secret).status_code
        == 202
    )
    assert records(signed_api) == 1


def test_tampered_body_id_or_signature_is_refused(signed_api: Api):
    _, _, conn_id, _, secret = connect(signed_api)
    assert secret is not None
    stamp = int(time.time())
    good = standard_webhooks_signature(secret, "msg_t", stamp, BODY)
    tampered_body = json.dumps({"item_id": "it-1", "value": "red"}).encode()
    other_secret = "whsec_" + base64.b64encode(b"another secret of 32 bytes here.").decode()
    other_key = standard_webhooks_signature(other_secret, "msg_t", stamp, BODY)
    cases = [  # (body, webhook-id, signature)
        (tampered_body, "msg_t", good),
        (BODY, "msg_other", good),
        (BODY, "msg_t", good[:-4] + "AAA="),
        (BODY, "msg_t", "v2," + good[3:]),
        (BODY, "msg_t", "garbage"),
        (BODY, "msg_t", other_key),
    ]
    for body, msg_id, signature in cases:
        r = post(signed_api, conn_id, body, msg_id=msg_id, timestamp=stamp, signature=signature)
        assert_error(r, 401, "unauthenticated")
    r = signed_api.client.post(
        f"/v1/integrations/callbacks/signed_partner/{conn_id}",
        content=BODY,
        headers={"webhook-id": "x", "webhook-timestamp": "not-a-number", "webhook-signature": good},
    )
    assert_error(r, 401)
    assert records(signed_api) == 0
    # the untouched message still passes, so the refusals above were about the tampering
    assert post(signed_api, conn_id, BODY, msg_id="msg_t", timestamp=stamp, signature=good).status_code == 202
    with signed_api.runtime.db.read() as s:
        reasons = [
            a.details["reason"]
            for a in s.scalars(select(Activity).where(Activity.kind == "callback.rejected"))
        ]
    assert reasons
    assert set(reasons) <= {"bad_signature", "malformed_signature"}


def test_rotated_away_key_no_longer_signs(signed_api: Api):
    token, occasion_id, conn_id, _, secret = connect(signed_api)
    r = signed_api.patch(token, occasion_id, conn_id, rotate_key=True)
    assert r.status_code == 200, r.text
    new_secret = r.json()["callback_signing_secret"]
    assert_error(post(signed_api, conn_id, BODY, msg_id="m1", secret=secret), 401)
    assert post(signed_api, conn_id, BODY, msg_id="m2", secret=new_secret).status_code == 202


def test_shared_secret_header_is_also_accepted(signed_api: Api):
    _, _, conn_id, key, _ = connect(signed_api)
    r = signed_api.client.post(
        f"/v1/integrations/callbacks/signed_partner/{conn_id}",
        content=BODY,
        headers={"x-tov-integration-secret": key, "x-tov-delivery-id": "d1"},
    )
    assert r.status_code == 202, r.text


def test_shared_secret_adapters_do_not_take_signatures(signed_api: Api):
    _, _, conn_id, key, none = connect(signed_api, "printing_partner")
    assert none is None  # no signing secret for an adapter whose partner does not sign
    body = json.dumps(
        {
            "event": "order.status_changed",
            "order_id": "o",
            "status": "s",
            "occurred_at": "2026-01-01T00:00:00Z",
        }
    ).encode()
    # signed with what the old scheme derived from the key: refused all the same
    derived = hashlib.sha256(key.split("_", 2)[2].encode()).digest()
    secret = "whsec_" + base64.b64encode(derived).decode()
    r = post(signed_api, conn_id, body, secret=secret, integration_key="printing_partner")
    assert_error(r, 401)


def test_adapter_without_inbound_callbacks_is_404(signed_api: Api):
    _, _, conn_id, key, _ = connect(signed_api, "quiet_partner")
    r = signed_api.client.post(
        f"/v1/integrations/callbacks/quiet_partner/{conn_id}",
        content=BODY,
        headers={"x-tov-integration-secret": key},
    )
    assert_error(r, 404, "not_found")


@pytest.mark.no_db
@pytest.mark.parametrize("timestamp", ["\u00b2", "\uff11\uff17" + "\uff10" * 8, "1e9", " 17", "-17"])
def test_a_timestamp_that_is_not_ascii_digits_is_malformed_not_a_crash(timestamp: str):
    """``str.isdigit`` accepts superscript and full-width digits, which ``int()`` refuses or reads."""
    from tovplus.integrations import standard_webhooks

    key = b"k" * 32
    signature = standard_webhooks.sign(key, "msg_1", "1700000000", b"{}")
    with pytest.raises(standard_webhooks.SignatureInvalid) as refused:
        standard_webhooks.verify([key], "msg_1", timestamp, signature, b"{}", now=1_700_000_000)
    assert str(refused.value) == "malformed_signature"
