"""Secrets at rest: AES-GCM round trips, tampering, swapped rows, key rotation, the key file."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import Api
from tests.processes.test_cli import assert_one_line_failure, cli_env, run_cli
from tovplus.app import create_app
from tovplus.db.ids import new_id
from tovplus.db.models import ConnectionSecret, WebhookEndpoint
from tovplus.errors import ConfigurationError
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.keyring import (
    KEY_FILE_NAME,
    DecryptionFailed,
    Keyring,
    Sealed,
    add_key_to_file,
    generate_key,
)
from tovplus.services.credentials import (
    decrypt_connection_secrets,
    open_endpoint_secret,
    reencrypt_all,
    seal_endpoint_secret,
    secret_matches,
    store_secret,
)
from tovplus.settings import Settings

API_KEY = "pk_live_ABCDEFGHIJKLMNOP"


def flip(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


def make_connection(api: Api, api_key: str = API_KEY) -> tuple[str, str]:
    """A printing_partner connection with a stored ``api_key``: ``(occasion_id, connection_id)``."""
    token = api.user("planner")
    occasion_id = api.occasion(token)
    r = api.connect(token, occasion_id, secrets={"api_key": api_key})
    assert r.status_code == 201, r.text
    return occasion_id, r.json()["connection"]["id"]


def secret_row(runtime: Runtime, connection_id: str, field_key: str = "api_key") -> ConnectionSecret:
    with runtime.db.read() as session:
        row = session.get(ConnectionSecret, (connection_id, field_key))
        assert row is not None
        return row


def add_endpoint(
    runtime: Runtime, occasion_id: str, signing_secret: str, keyring: Keyring | None = None
) -> str:
    endpoint_id = new_id("whe")
    sealed = seal_endpoint_secret(keyring or runtime.keyring, endpoint_id, signing_secret)
    with runtime.db.write() as session:
        session.add(
            WebhookEndpoint(
                id=endpoint_id,
                occasion_id=occasion_id,
                url="https://hooks.example.com/tov",
                event_types=["integration.sync_completed"],
                secret_key_id=sealed.key_id,
                secret_nonce=sealed.nonce,
                secret_ciphertext=sealed.ciphertext,
                created_by="user:test",
            )
        )
    return endpoint_id


# --- the keyring itself ------------------------------------------------------------------------


@pytest.mark.no_db
def test_seal_and_open_round_trip_with_unicode_and_empty_values():
    ring = Keyring.parse(generate_key())
    for value in ["", "x", API_KEY, "ключ-🔑-" * 50]:
        sealed = ring.seal(value, "connection:c1:api_key")
        assert sealed.key_id == ring.primary_id
        if len(value) >= 8:  # shorter plaintexts can turn up in random bytes by chance
            assert value.encode() not in sealed.ciphertext
        assert ring.open(sealed, "connection:c1:api_key") == value


@pytest.mark.no_db
def test_each_seal_uses_a_fresh_nonce():
    ring = Keyring.parse(generate_key())
    a, b = ring.seal(API_KEY, "aad"), ring.seal(API_KEY, "aad")
    assert a.nonce != b.nonce
    assert a.ciphertext != b.ciphertext
    assert len(a.nonce) == 12


@pytest.mark.no_db
def test_tampered_ciphertext_nonce_or_aad_is_rejected():
    ring = Keyring.parse(generate_key())
    sealed = ring.seal(API_KEY, "connection:c1:api_key")
    for index in (0, len(sealed.ciphertext) // 2, len(sealed.ciphertext) - 1):
        with pytest.raises(DecryptionFailed):
            ring.open(
                Sealed(sealed.key_id, sealed.nonce, flip(sealed.ciphertext, index)), "connection:c1:api_key"
            )
    with pytest.raises(DecryptionFailed):
        ring.open(Sealed(sealed.key_id, flip(sealed.nonce), sealed.ciphertext), "connection:c1:api_key")
    with pytest.raises(DecryptionFailed):
        ring.open(Sealed(sealed.key_id, sealed.nonce, sealed.ciphertext[:-1]), "connection:c1:api_key")
    with pytest.raises(DecryptionFailed):
        ring.open(Sealed(sealed.key_id, sealed.nonce, b""), "connection:c1:api_key")
    with pytest.raises(DecryptionFailed):
        ring.open(sealed, "connection:c2:api_key")


@pytest.mark.no_db
def test_unknown_key_id_and_a_different_key_under_the_same_id_are_rejected():
    ring = Keyring.parse(generate_key())
    sealed = ring.seal(API_KEY, "aad")
    with pytest.raises(DecryptionFailed, match="no key"):
        ring.open(Sealed("k-unknown", sealed.nonce, sealed.ciphertext), "aad")
    impostor = Keyring.parse(f"{ring.primary_id}:{generate_key().split(':', 1)[1]}")
    with pytest.raises(DecryptionFailed):
        impostor.open(sealed, "aad")


@pytest.mark.no_db
def test_keyring_encrypts_with_the_first_key_and_decrypts_with_any():
    old, new = generate_key(), generate_key()
    old_ring = Keyring.parse(old)
    sealed_old = old_ring.seal("value", "aad")
    ring = Keyring.parse(f"# rotated\n{new}\n{old}\n")
    assert ring.key_ids == [new.split(":")[0], old.split(":")[0]]
    assert ring.primary_id == new.split(":")[0]
    assert ring.open(sealed_old, "aad") == "value"
    assert ring.seal("value", "aad").key_id == ring.primary_id


# Fixed key material, so test ids are the same in every process (pytest-xdist collects in each worker).
VALID = "P50ja1lhnW3c0AD4QAp8jdjbLVpbif2kGzm4kEnCSMI="
OTHER_VALID = "dsQmMGwJWKrMtgYR2Ty1-ikQH09Zb240BaWwzXnG0oM="


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no keys"),
        (" , ,\n# just a comment\n", "no keys"),
        ("justakey", "key_id:base64url-key"),
        (f":{VALID}", "key_id:base64url-key"),
        ("k1:!!!!", "not valid base64"),
        (f"k1:{VALID[:20]}!!{VALID[20:]}", "not valid base64"),
        ("k1:" + "A" * 22, "32 bytes"),
        (f"k1:{VALID}A", "not valid base64"),
        ("k1:" + VALID.rstrip("=") + "AAAA", "32 bytes"),
        (f"k1:{VALID},k1:{OTHER_VALID}", "twice"),
        (f"k 1:{VALID}", "key id"),
        (f"{'k' * 65}:{VALID}", "key id"),
        (f"k1/../x:{VALID}", "key id"),
    ],
)
def test_keyring_parse_rejects_bad_specs_without_echoing_key_material(spec: str, message: str):
    with pytest.raises(ConfigurationError) as info:
        Keyring.parse(spec)
    assert message in info.value.message
    assert VALID not in info.value.message
    assert "\n" not in info.value.message


# --- the key file (TOVPLUS_SECRET_KEYS unset) ------------------------------------------------------


@pytest.mark.no_db
def test_the_key_file_is_created_0600_once_and_reused(tmp_path: Path):
    data_dir = tmp_path / "data"
    previous = os.umask(0)  # a permissive umask must not widen the file's mode
    try:
        ring = Keyring.load(None, data_dir)
    finally:
        os.umask(previous)
    path = data_dir / KEY_FILE_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    assert Keyring.load(None, data_dir).primary_id == ring.primary_id
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILE_NAME]  # no temporary files left behind
    # a spec, when given, wins over the file
    spec = generate_key()
    assert Keyring.load(spec, data_dir).primary_id == spec.split(":")[0]


@pytest.mark.no_db
def test_processes_starting_at_once_agree_on_one_key(tmp_path: Path):
    data_dir = tmp_path / "data"
    barrier = threading.Barrier(8)
    ids: list[str] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait()
            ids.append(Keyring.load(None, data_dir).primary_id)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(ids)) == 1
    assert Keyring.load(None, data_dir).primary_id == ids[0]


@pytest.mark.no_db
def test_add_key_to_file_prepends_a_new_primary_and_keeps_0600(tmp_path: Path):
    data_dir = tmp_path / "data"
    first = Keyring.load(None, data_dir)
    new_id_ = add_key_to_file(data_dir)
    ring = Keyring.load(None, data_dir)
    assert ring.primary_id == new_id_
    assert ring.key_ids == [new_id_, first.primary_id]
    assert (data_dir / KEY_FILE_NAME).stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in data_dir.iterdir()) == [KEY_FILE_NAME]


# --- stored connection secrets: bound to their row and field ---------------------------------------


def test_stored_secret_round_trips_and_is_not_stored_in_clear(api: Api, runtime: Runtime):
    _, connection_id = make_connection(api)
    row = secret_row(runtime, connection_id)
    assert API_KEY.encode() not in row.ciphertext
    assert row.key_id == runtime.keyring.primary_id
    assert row.redacted == "••••••••MNOP"
    with runtime.db.read() as session:
        assert decrypt_connection_secrets(session, runtime.keyring, connection_id) == {"api_key": API_KEY}
        assert secret_matches(session, runtime.keyring, connection_id, "api_key", API_KEY)
        assert not secret_matches(session, runtime.keyring, connection_id, "api_key", API_KEY + "x")
        assert not secret_matches(session, runtime.keyring, connection_id, "missing", API_KEY)


def test_tampered_stored_ciphertext_is_rejected(api: Api, runtime: Runtime):
    _, connection_id = make_connection(api)
    with runtime.db.write() as session:
        row = session.get(ConnectionSecret, (connection_id, "api_key"))
        assert row is not None
        row.ciphertext = flip(row.ciphertext, 3)
    with runtime.db.read() as session, pytest.raises(DecryptionFailed):
        decrypt_connection_secrets(session, runtime.keyring, connection_id)


def test_a_ciphertext_copied_to_another_connection_is_rejected(api: Api, runtime: Runtime):
    _, victim = make_connection(api, "pk_live_VICTIMVICTIMVICTIM")
    _, attacker = make_connection(api, "pk_live_ATTACKERATTACKER")
    source = secret_row(runtime, victim)
    with runtime.db.write() as session:
        row = session.get(ConnectionSecret, (attacker, "api_key"))
        assert row is not None
        row.key_id, row.nonce, row.ciphertext = source.key_id, source.nonce, source.ciphertext
    with runtime.db.read() as session:
        with pytest.raises(DecryptionFailed):
            decrypt_connection_secrets(session, runtime.keyring, attacker)
        with pytest.raises(DecryptionFailed):
            secret_matches(session, runtime.keyring, attacker, "api_key", "pk_live_VICTIMVICTIMVICTIM")
        # the victim's own row is untouched
        assert decrypt_connection_secrets(session, runtime.keyring, victim) == {
            "api_key": "pk_live_VICTIMVICTIMVICTIM"
        }


def test_a_ciphertext_copied_to_another_field_is_rejected(api: Api, runtime: Runtime):
    _, connection_id = make_connection(api)
    with runtime.db.write() as session:
        store_secret(session, runtime.keyring, connection_id, "other_field", "another secret value")
    source = secret_row(runtime, connection_id, "api_key")
    with runtime.db.write() as session:
        row = session.get(ConnectionSecret, (connection_id, "other_field"))
        assert row is not None
        row.key_id, row.nonce, row.ciphertext = source.key_id, source.nonce, source.ciphertext
    with runtime.db.read() as session, pytest.raises(DecryptionFailed):
        decrypt_connection_secrets(session, runtime.keyring, connection_id)


def test_a_row_naming_an_unknown_key_id_is_rejected(api: Api, runtime: Runtime):
    _, connection_id = make_connection(api)
    with runtime.db.write() as session:
        row = session.get(ConnectionSecret, (connection_id, "api_key"))
        assert row is not None
        row.key_id = "k-dropped-long-ago"
    with runtime.db.read() as session, pytest.raises(DecryptionFailed, match="no key"):
        decrypt_connection_secrets(session, runtime.keyring, connection_id)


def test_an_endpoint_secret_is_bound_to_its_endpoint(api: Api, runtime: Runtime):
    occasion_id, _ = make_connection(api)
    first = add_endpoint(runtime, occasion_id, "whsec_first_endpoint_secret")
    second = add_endpoint(runtime, occasion_id, "whsec_second_endpoint_secret")
    with runtime.db.write() as session:
        a, b = session.get(WebhookEndpoint, first), session.get(WebhookEndpoint, second)
        assert a is not None
        assert b is not None
        assert open_endpoint_secret(runtime.keyring, a) == "whsec_first_endpoint_secret"
        b.secret_key_id, b.secret_nonce, b.secret_ciphertext = (
            a.secret_key_id,
            a.secret_nonce,
            a.secret_ciphertext,
        )
        with pytest.raises(DecryptionFailed):
            open_endpoint_secret(runtime.keyring, b)


# --- master key rotation -----------------------------------------------------------------------------


def test_rotation_moves_every_secret_to_the_new_key_and_the_old_key_can_go(
    api: Api, runtime: Runtime, secret_keys: str
):
    occasion_id, c1 = make_connection(api, "pk_live_FIRSTFIRSTFIRST")
    _, c2 = make_connection(api, "pk_live_SECONDSECONDSECOND")
    endpoint_id = add_endpoint(runtime, occasion_id, "whsec_rotate_me_please")
    old_id = runtime.keyring.primary_id

    new_entry = generate_key()
    rotated = Keyring.parse(f"{new_entry},{secret_keys}")
    assert rotated.primary_id != old_id
    with runtime.db.write() as session:
        counts = reencrypt_all(session, rotated, batch_size=1)
    assert counts == {"connection_secrets": 2, "webhook_endpoints": 1}

    with runtime.db.read() as session:
        rows = session.scalars(select(ConnectionSecret)).all()
        assert {r.key_id for r in rows} == {rotated.primary_id}
        assert {r.redacted for r in rows} == {"••••••••IRST", "••••••••COND"}
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        assert endpoint.secret_key_id == rotated.primary_id

        new_only = Keyring.parse(new_entry)  # the old key is dropped
        assert decrypt_connection_secrets(session, new_only, c1) == {"api_key": "pk_live_FIRSTFIRSTFIRST"}
        assert decrypt_connection_secrets(session, new_only, c2) == {"api_key": "pk_live_SECONDSECONDSECOND"}
        assert open_endpoint_secret(new_only, endpoint) == "whsec_rotate_me_please"
        with pytest.raises(DecryptionFailed):
            decrypt_connection_secrets(session, Keyring.parse(secret_keys), c1)

    with runtime.db.write() as session:  # nothing left to move
        assert reencrypt_all(session, rotated) == {"connection_secrets": 0, "webhook_endpoints": 0}


def test_rotation_with_a_missing_old_key_fails_and_changes_nothing(api: Api, runtime: Runtime):
    _, connection_id = make_connection(api)
    before = secret_row(runtime, connection_id)
    stranger = Keyring.parse(generate_key())
    with pytest.raises(DecryptionFailed), runtime.db.write() as session:
        reencrypt_all(session, stranger)
    after = secret_row(runtime, connection_id)
    assert (after.key_id, after.nonce, after.ciphertext) == (before.key_id, before.nonce, before.ciphertext)


@pytest.mark.slow
def test_cli_add_key_then_reencrypt_end_to_end(database_url: str, tmp_path: Path):
    """``tovplus secrets add-key`` + ``reencrypt`` against a key file in the data dir.

    Runs on both backends: the key file is the embedded default, but the re-encryption
    walks the configured database, whichever it is.
    """
    data_dir = tmp_path / "data"
    env = cli_env(data_dir, database_url)
    settings = Settings(
        data_dir=data_dir, database_url=database_url, queue_url="memory://", allow_private_urls=True
    )
    rt = build_runtime(settings)  # TOVPLUS_SECRET_KEYS unset: creates the key file
    key_file = data_dir / KEY_FILE_NAME
    assert key_file.stat().st_mode & 0o777 == 0o600
    first_id = rt.keyring.primary_id
    try:
        with TestClient(create_app(rt)) as client:
            api = Api(client, rt)
            token = api.user("planner")
            connection_id = api.connect(token, api.occasion(token)).json()["connection"]["id"]
        assert secret_row(rt, connection_id).key_id == first_id

        added = run_cli("secrets", "add-key", env=env)
        assert added.returncode == 0, added.stderr
        second_id = added.stdout.strip().split()[-1]
        assert second_id != first_id
        assert Keyring.load(None, data_dir).key_ids == [second_id, first_id]
        assert key_file.stat().st_mode & 0o777 == 0o600

        moved = run_cli("secrets", "reencrypt", env=env)
        assert moved.returncode == 0, moved.stderr
        assert f"re-encrypted under {second_id}" in moved.stdout
        assert "connection_secrets=1" in moved.stdout
        assert secret_row(rt, connection_id).key_id == second_id

        # the old key can now be dropped from the file
        key_file.write_text(key_file.read_text().splitlines()[0] + "\n")
        with rt.db.read() as session:
            assert decrypt_connection_secrets(session, Keyring.load(None, data_dir), connection_id) == {
                "api_key": API_KEY
            }
    finally:
        rt.close()

    # with TOVPLUS_SECRET_KEYS set, keys live there: add-key refuses with one line
    refused = run_cli("secrets", "add-key", env={**env, "TOVPLUS_SECRET_KEYS": generate_key()})
    assert "TOVPLUS_SECRET_KEYS" in assert_one_line_failure(refused)
