"""Issue 13, finding 2: signed callbacks are keyed by a secret of their own, not by a stored hash.

Before the fix the Standard Webhooks HMAC key was ``integration_keys.secret_hash`` itself, so a
copy of the database signed callbacks that were accepted. Now each issued key of an adapter
whose partner signs gets a random ``whsec_…`` secret, shown once, stored only sealed (AES-GCM,
bound to its key's row), rotated with the key and destroyed on revocation.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.callbacks.test_callback_signatures import SignedPartner
from tests.conftest import Api, assert_error, make_settings
from tovplus.app import create_app
from tovplus.db.models import Activity, Base, IntegrationKey, IntegrationPrincipal
from tovplus.integrations.registry import AdapterRegistry, builtin_adapters
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.keyring import Keyring, generate_key
from tovplus.settings import Settings

BODY = json.dumps({"item_id": "it-1", "value": "blue"}).encode()


class SigningPartner(SignedPartner):
    """The signing test partner of the callback tests, under a key of its own."""

    integration_key = "signing_partner"
    name = "Signing partner"


def registry() -> AdapterRegistry:
    reg = AdapterRegistry()
    for adapter in (*builtin_adapters(), SigningPartner):
        reg.register(adapter)
    return reg


@pytest.fixture
def signed_api(settings: Settings) -> Iterator[Api]:
    rt = build_runtime(settings, registry=registry())
    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        yield Api(client, rt)
    rt.close()


def connect(api: Api, integration_key: str = "signing_partner") -> tuple[str, str, str, dict[str, Any]]:
    """(planner token, occasion id, connection id, the create response)."""
    token = api.user()
    occasion_id = api.occasion(token)
    body: dict[str, Any] = {"integration_key": integration_key, "state": "enabled"}
    if integration_key == "signing_partner":
        body.update(config={}, secrets={})
    r = api.connect(token, occasion_id, **body)
    assert r.status_code == 201, r.text
    return token, occasion_id, r.json()["connection"]["id"], r.json()


def signature(key: bytes, msg_id: str, stamp: int, body: bytes = BODY) -> str:
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def key_of(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def post(
    api: Api, connection_id: str, msg_id: str, sig: str, *, integration_key: str = "signing_partner"
) -> Any:
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(time.time())), "webhook-signature": sig}
    return api.client.post(
        f"/v1/integrations/callbacks/{integration_key}/{connection_id}", content=BODY, headers=headers
    )


def post_signed(api: Api, connection_id: str, msg_id: str, secret: str) -> Any:
    return post(api, connection_id, msg_id, signature(key_of(secret), msg_id, int(time.time())))


def rejected_reasons(rt: Runtime, connection_id: str) -> list[str]:
    with rt.db.read() as s:
        rows = s.scalars(
            select(Activity).where(
                Activity.kind == "callback.rejected", Activity.connection_id == connection_id
            )
        ).all()
        return [a.details["reason"] for a in rows]


def key_rows(rt: Runtime, connection_id: str) -> list[IntegrationKey]:
    with rt.db.read() as s:
        return list(
            s.scalars(
                select(IntegrationKey)
                .join(IntegrationPrincipal, IntegrationPrincipal.id == IntegrationKey.principal_id)
                .where(IntegrationPrincipal.connection_id == connection_id)
                .order_by(IntegrationKey.id)
            )
        )


# --- what the database holds does not sign --------------------------------------------------------


def every_stored_value(rt: Runtime) -> list[Any]:
    """Every value of every column of every table (JSON documents taken apart)."""
    values: list[Any] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(k)
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif value is not None:
            values.append(value)

    with rt.db.read() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)).all():
                for value in row:
                    walk(value)
    return values


def candidate_keys(values: list[Any]) -> list[bytes]:
    """HMAC keys one could make of the values: as they are, hex- and base64-decoded, hashed."""
    keys: set[bytes] = set()
    for value in values:
        raw = value if isinstance(value, bytes) else str(value).encode()
        keys.add(raw)
        keys.add(hashlib.sha256(raw).digest())
        text = raw.decode("latin-1")
        with contextlib.suppress(ValueError):  # the old scheme: the digest of the key's secret part
            keys.add(bytes.fromhex(text))
        try:
            encoded = text.removeprefix("whsec_")
            keys.add(base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True))
        except ValueError:
            pass
    keys.discard(b"")
    return sorted(keys)


def test_a_signature_made_from_anything_in_the_database_is_refused(signed_api: Api) -> None:
    token, occasion_id, conn_id, _created = connect(signed_api)
    # a rotated-away key, an accepted callback and its activity are in the database too
    r = signed_api.patch(token, occasion_id, conn_id, rotate_key=True)
    assert r.status_code == 200, r.text
    accepted = signed_api.client.post(
        f"/v1/integrations/callbacks/signing_partner/{conn_id}",
        content=BODY,
        headers={"x-tov-integration-secret": r.json()["issued_key"], "x-tov-delivery-id": "d1"},
    )
    assert accepted.status_code == 202, accepted.text
    keys = candidate_keys(every_stored_value(signed_api.runtime))
    assert len(keys) > 50  # the scan saw the tables
    stamp = int(time.time())
    for start in range(0, len(keys), 8):  # eight signatures a header: one of them would do
        msg_id = f"forged_{start}"
        sig = " ".join(signature(k, msg_id, stamp) for k in keys[start : start + 8])
        assert_error(post(signed_api, conn_id, msg_id, sig), 401, "unauthenticated")
    # the secret shown at the rotation does sign
    assert (
        post_signed(signed_api, conn_id, "msg_real", r.json()["callback_signing_secret"]).status_code == 202
    )


def test_the_secret_is_shown_once_and_never_stored_in_the_clear(signed_api: Api) -> None:
    token, occasion_id, conn_id, created = connect(signed_api)
    secret = created["callback_signing_secret"]
    assert secret.startswith("whsec_")
    assert len(key_of(secret)) == 32
    assert secret not in created["connection"].values()
    r = signed_api.client.get(
        f"/v1/occasions/{occasion_id}/integrations/connections/{conn_id}", headers=signed_api.auth(token)
    )
    assert "whsec_" not in r.text
    stored = every_stored_value(signed_api.runtime)
    raw = key_of(secret)
    for value in stored:
        blob = value if isinstance(value, bytes) else str(value).encode()
        assert secret.encode() not in blob
        assert raw not in blob
        assert secret.removeprefix("whsec_").encode() not in blob
    (row,) = key_rows(signed_api.runtime, conn_id)
    assert row.callback_secret_key_id == signed_api.runtime.keyring.primary_id
    assert row.callback_secret_nonce is not None
    assert len(row.callback_secret_nonce) == 12


def test_the_real_secret_signs_and_after_rotation_only_the_new_one_does(signed_api: Api) -> None:
    token, occasion_id, conn_id, created = connect(signed_api)
    first = created["callback_signing_secret"]
    assert post_signed(signed_api, conn_id, "m1", first).status_code == 202
    r = signed_api.patch(token, occasion_id, conn_id, rotate_key=True)
    assert r.status_code == 200, r.text
    second = r.json()["callback_signing_secret"]
    assert second.startswith("whsec_")
    assert second != first
    assert r.json()["issued_key"] != created["issued_key"]
    assert_error(post_signed(signed_api, conn_id, "m2", first), 401, "unauthenticated")
    assert post_signed(signed_api, conn_id, "m3", second).status_code == 202
    # the rotated-away key keeps no secret
    old, new = key_rows(signed_api.runtime, conn_id)
    assert old.revoked_at is not None
    assert (old.callback_secret_key_id, old.callback_secret_nonce, old.callback_secret_ciphertext) == (
        None,
        None,
        None,
    )
    assert new.callback_secret_ciphertext is not None
    # a PATCH without rotation shows neither
    r = signed_api.patch(token, occasion_id, conn_id, state="disabled")
    assert "callback_signing_secret" not in r.json()
    assert "issued_key" not in r.json()


def test_revocation_destroys_the_secret(signed_api: Api) -> None:
    token, occasion_id, conn_id, created = connect(signed_api)
    r = signed_api.patch(token, occasion_id, conn_id, state="revoked")
    assert r.status_code == 200, r.text
    assert "callback_signing_secret" not in r.json()
    for row in key_rows(signed_api.runtime, conn_id):
        assert row.callback_secret_ciphertext is None
        assert row.callback_secret_nonce is None
    assert_error(post_signed(signed_api, conn_id, "m1", created["callback_signing_secret"]), 401)


def test_adapters_whose_partners_do_not_sign_get_no_signing_secret(signed_api: Api) -> None:
    _, _, conn_id, created = connect(signed_api, "printing_partner")
    assert "callback_signing_secret" not in created
    (row,) = key_rows(signed_api.runtime, conn_id)
    assert row.callback_secret_ciphertext is None


def test_a_key_issued_before_signing_secrets_is_refused_until_it_is_rotated(signed_api: Api) -> None:
    """After the upgrade an old key has no secret: the hash-derived signature is refused, with a
    reason that says what to do, and rotating the key issues a secret that works."""
    token, occasion_id, conn_id, created = connect(signed_api)
    rt = signed_api.runtime
    with rt.db.write() as s:  # what the migration leaves on a key issued before it
        s.execute(
            update(IntegrationKey)
            .where(IntegrationKey.key_id == created["connection"]["principal"]["key_id"])
            .values(callback_secret_key_id=None, callback_secret_nonce=None, callback_secret_ciphertext=None)
        )
    secret_part = created["issued_key"].split("_", 2)[2]
    old_scheme = hashlib.sha256(secret_part.encode()).digest()
    stamp = int(time.time())
    assert_error(post(signed_api, conn_id, "m1", signature(old_scheme, "m1", stamp)), 401)
    assert rejected_reasons(rt, conn_id) == ["no_signing_secret"]
    r = signed_api.patch(token, occasion_id, conn_id, rotate_key=True)
    assert post_signed(signed_api, conn_id, "m2", r.json()["callback_signing_secret"]).status_code == 202


def test_a_sealed_secret_copied_to_another_keys_row_does_not_open(signed_api: Api) -> None:
    _, _, conn_a, created_a = connect(signed_api)
    _, _, conn_b, created_b = connect(signed_api)
    rt = signed_api.runtime
    (row_a,) = key_rows(rt, conn_a)
    (row_b,) = key_rows(rt, conn_b)
    with rt.db.write() as s:
        s.execute(
            update(IntegrationKey)
            .where(IntegrationKey.id == row_b.id)
            .values(
                callback_secret_key_id=row_a.callback_secret_key_id,
                callback_secret_nonce=row_a.callback_secret_nonce,
                callback_secret_ciphertext=row_a.callback_secret_ciphertext,
            )
        )
    assert_error(post_signed(signed_api, conn_b, "m1", created_a["callback_signing_secret"]), 401)
    assert_error(post_signed(signed_api, conn_b, "m2", created_b["callback_signing_secret"]), 401)
    assert set(rejected_reasons(rt, conn_b)) == {"unreadable_signing_secret"}
    assert post_signed(signed_api, conn_a, "m3", created_a["callback_signing_secret"]).status_code == 202


def test_the_secret_is_opened_once_per_connection_and_again_after_rotation(
    signed_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = signed_api.runtime
    opened: list[str] = []
    real_open = rt.keyring.open

    def counting_open(sealed: Any, aad: str) -> str:
        opened.append(aad)
        return real_open(sealed, aad)

    monkeypatch.setattr(rt.keyring, "open", counting_open)
    token, occasion_id, conn_id, created = connect(signed_api)
    for i in range(20):
        assert (
            post_signed(signed_api, conn_id, f"m{i}", created["callback_signing_secret"]).status_code == 202
        )
    assert len(opened) == 1
    r = signed_api.patch(token, occasion_id, conn_id, rotate_key=True)
    for i in range(5):
        assert (
            post_signed(signed_api, conn_id, f"n{i}", r.json()["callback_signing_secret"]).status_code == 202
        )
    assert len(opened) == 2


def test_master_key_rotation_reencrypts_signing_secrets(
    signed_api: Api, database_url: str, tmp_path: Path, secret_keys: str
) -> None:
    from tovplus.services.callbacks import reencrypt_signing_secrets

    _, _, conn_id, created = connect(signed_api)
    new_entry = generate_key()
    rotated = Keyring.parse(f"{new_entry},{secret_keys}")
    with signed_api.runtime.db.write() as s:
        assert reencrypt_signing_secrets(s, rotated) == {"callback_signing_secrets": 1}
    with signed_api.runtime.db.write() as s:
        assert reencrypt_signing_secrets(s, rotated) == {"callback_signing_secrets": 0}
    # a process that has only the new key verifies with the re-encrypted secret
    rt = build_runtime(make_settings(database_url, tmp_path / "new", new_entry), registry=registry())
    try:
        with TestClient(create_app(rt), raise_server_exceptions=False) as client:
            api = Api(client, rt)
            assert post_signed(api, conn_id, "m1", created["callback_signing_secret"]).status_code == 202
    finally:
        rt.close()
