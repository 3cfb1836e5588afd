"""Issue 13, finding 3: a lost master key is not silently replaced.

* start-up refuses, with one line naming the missing key ids and where to supply them, while the
  database holds secrets sealed under keys the keyring lacks (and generates no key then);
* a sync whose stored secrets cannot be decrypted fails once, final, with health ``failing`` and
  an activity entry, so "sync now" queues a new run;
* a webhook delivery whose signing secret cannot be decrypted fails once and disables the endpoint;
* ``/readyz`` answers 503 while the keyring cannot open what the database holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tests.conftest import BACKEND, Api
from tests.processes.test_cli import assert_one_line_failure, cli_env, run_cli
from tests.support.sync import activity_of, connection, make_connection, runs, simulator
from tests.webhooks.test_webhooks_delivery import (
    Receiver,
    add_endpoint,
    attempts,
    delivery,
    emit,
    endpoint,
    tuned,
    verify,
    wait_until_due,
)
from tovplus.app import create_app
from tovplus.db.models import Activity, ConnectionSecret, WebhookEndpoint
from tovplus.db.types import utcnow
from tovplus.partner_sim import DEMO_API_KEY
from tovplus.runtime import Runtime, build_runtime, readiness
from tovplus.runtime.keyring import KEY_FILE_NAME, Keyring, generate_key
from tovplus.runtime.master_keys import MissingKeys
from tovplus.services import credentials, webhooks
from tovplus.services import sync as syncs
from tovplus.settings import Settings

WORKER = "test-worker"


def key_id(entry: str) -> str:
    return entry.split(":", 1)[0]


def newer_writer(rt: Runtime, newer: str) -> Runtime:
    """Another process on the same database whose keyring has a newer primary key (``newer``)."""
    keyring = Keyring.parse(f"{newer},{rt.settings.secret_keys}")
    return Runtime(settings=rt.settings, db=rt.db, registry=rt.registry, keyring=keyring)


@pytest.fixture
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """A database nothing has touched: ``None`` (the embedded default in the data dir) or a new
    PostgreSQL database."""
    if BACKEND == "postgresql":
        return str(request.getfixturevalue("postgres").create())
    return None


# --- start-up ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_restart_without_the_key_file_refuses_with_one_line_naming_the_key(
    tmp_path: Path, fresh_database_url: str | None
):
    data_dir = tmp_path / "data"
    env = cli_env(data_dir, fresh_database_url)
    key_file = data_dir / KEY_FILE_NAME

    # a fresh install (no sealed value anywhere) still creates the key file, 0600
    created = run_cli("users", "create", "--email", "p@example.com", "--role", "planner", env=env)
    assert created.returncode == 0, created.stderr
    assert key_file.stat().st_mode & 0o777 == 0o600
    settings = Settings(
        data_dir=data_dir,
        database_url=fresh_database_url or f"sqlite:///{data_dir / 'tovplus.db'}",
        queue_url="memory://",
        allow_private_urls=True,
    )
    rt = build_runtime(settings)
    try:
        the_key = rt.keyring.primary_id
        with TestClient(create_app(rt)) as client:
            api = Api(client, rt)
            token = api.user("planner")
            connection_id = api.connect(token, api.occasion(token)).json()["connection"]["id"]
    finally:
        rt.close()

    key_file.rename(tmp_path / "secret.keys.moved-away")
    for command in ("serve", "api", "worker"):
        line = assert_one_line_failure(run_cli(command, env=env, timeout=30))
        assert line.startswith("tovplus: the database holds secrets sealed with key id "), line
        assert the_key in line
        assert "TOVPLUS_SECRET_KEYS" in line
        assert str(key_file) in line
        assert "no new key was generated" in line
        assert not key_file.exists(), f"`tovplus {command}` generated a new key"

    # keys from the environment that lack the stored one: refused too, naming the key and the variable
    other = generate_key()
    line = assert_one_line_failure(run_cli("serve", env={**env, "TOVPLUS_SECRET_KEYS": other}, timeout=30))
    assert the_key in line
    assert key_id(other) not in line
    assert "which TOVPLUS_SECRET_KEYS lacks" in line
    with pytest.raises(MissingKeys, match=the_key):
        build_runtime(settings.model_copy(update={"secret_keys": other}))
    assert not key_file.exists()

    # the key put back: the process starts and the secret reads again
    (tmp_path / "secret.keys.moved-away").rename(key_file)
    rt = build_runtime(settings)
    try:
        with rt.db.read() as session:
            assert credentials.decrypt_connection_secrets(session, rt.keyring, connection_id) == {
                "api_key": "pk_live_ABCDEFGHIJKLMNOP"
            }
    finally:
        rt.close()


# --- a sync that cannot decrypt -----------------------------------------------------------------------


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = build_runtime(settings.model_copy(update={"sync_retry_delays": (0.05, 0.05)}))
    yield runtime
    runtime.close()


def make_unreadable(rt: Runtime, connection_id: str, how: str) -> None:
    """Leave the connection's stored secret one ``rt`` cannot decrypt."""
    if how == "sealed under a key this process lacks":
        writer = newer_writer(rt, generate_key())
        with rt.db.write() as session:
            credentials.store_secret(session, writer.keyring, connection_id, "api_key", DEMO_API_KEY)
    else:  # damaged in the database
        with rt.db.write() as session:
            row = session.get(ConnectionSecret, (connection_id, "api_key"))
            assert row is not None
            row.ciphertext = bytes([row.ciphertext[0] ^ 1]) + row.ciphertext[1:]


@pytest.mark.parametrize("how", ["sealed under a key this process lacks", "damaged"])
def test_a_sync_that_cannot_decrypt_fails_once_with_failing_health_and_sync_now_queues_a_new_run(
    rt: Runtime, how: str
):
    with simulator() as sim:
        made = make_connection(rt, sim.url)
        make_unreadable(rt, made.connection_id, how)
        run_id = syncs.request_sync(rt, made.caller, made.occasion_id, made.connection_id)

        outcome = syncs.execute_run(rt, run_id, worker_id=WORKER)
        assert outcome.state == "failed", outcome
        assert outcome.health == "failing"
        assert sim.stats()["requests"] == 0  # the adapter was never called
        # final: executing it again does nothing, and nothing is left to retry
        assert syncs.execute_run(rt, run_id, worker_id=WORKER).state == "skipped"

    (run,) = runs(rt, made.connection_id)
    assert (run.id, run.state, run.attempt) == (run_id, "failed", 1)
    assert run.error is not None
    assert run.error.startswith("The stored credentials could not be decrypted")

    row = connection(rt, made.connection_id)
    assert row.health == "failing"
    assert row.health_reasons == [syncs.UNREADABLE_REASON]  # no "api_key is required" drift on top
    assert row.last_sync_status == "failed"
    (failed,) = activity_of(rt, made.connection_id, "sync.failed")
    assert failed.details["reasons"] == [syncs.UNREADABLE_REASON]
    assert failed.details["sync_run_id"] == run_id
    assert syncs.UNREADABLE_REASON in failed.summary
    assert activity_of(rt, made.connection_id, "sync.retrying") == []

    again = syncs.request_sync(rt, made.caller, made.occasion_id, made.connection_id)
    assert again != run_id
    assert [r.state for r in runs(rt, made.connection_id)] == ["failed", "queued"]


# --- a webhook delivery that cannot decrypt its signing secret -------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def test_a_delivery_whose_signing_secret_does_not_decrypt_fails_once_and_disables_the_endpoint(
    api: Api, runtime: Runtime, receiver: Receiver
):
    damaged = add_endpoint(api, receiver.url)
    with runtime.db.write() as session:
        row = session.get(WebhookEndpoint, damaged.endpoint_id)
        assert row is not None
        row.secret_ciphertext = bytes([row.secret_ciphertext[0] ^ 1]) + row.secret_ciphertext[1:]
    first, second = emit(runtime, damaged.occasion_id)[0], emit(runtime, damaged.occasion_id)[0]

    webhooks.deliver(runtime, first, worker_id=WORKER)

    assert receiver.received == []
    assert delivery(runtime, first).state == "failed"
    assert delivery(runtime, first).next_attempt_at is None
    (attempt,) = attempts(runtime, first)
    assert attempt.error is not None
    assert "signing secret could not be read" in attempt.error
    disabled = endpoint(runtime, damaged.endpoint_id)
    assert disabled.state == "disabled"
    assert disabled.disabled_reason == webhooks.UNREADABLE_ENDPOINT_REASON
    assert delivery(runtime, second).state == "failed"  # its pending deliveries went with it
    with runtime.db.read() as session:
        kinds = session.scalars(
            select(Activity.kind).where(
                Activity.occasion_id == damaged.occasion_id, Activity.kind.like("webhook.%")
            )
        ).all()
    assert list(kinds) == ["webhook.endpoint_created", "webhook.endpoint_disabled"]
    webhooks.deliver(runtime, second, worker_id=WORKER)  # nothing left to try
    assert webhooks.requeue_due_deliveries(runtime, utcnow() + timedelta(days=1)) == []
    assert receiver.received == []
    assert len(attempts(runtime, first)) == 1

    # sealed with a newer key this process lacks (a rotation half rolled out): not final, the
    # schedule retries it, and a process that has the key delivers it
    newer = add_endpoint(api, receiver.url)
    writer = newer_writer(runtime, generate_key())
    sealed = credentials.seal_endpoint_secret(writer.keyring, newer.endpoint_id, newer.secret)
    with runtime.db.write() as session:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == newer.endpoint_id)
            .values(
                secret_key_id=sealed.key_id, secret_nonce=sealed.nonce, secret_ciphertext=sealed.ciphertext
            )
        )
    (third,) = emit(runtime, newer.occasion_id)
    webhooks.deliver(tuned(runtime, webhook_retry_delays=(0.05,)), third, worker_id=WORKER)
    assert delivery(runtime, third).state == "pending"
    assert endpoint(runtime, newer.endpoint_id).state == "active"
    assert receiver.received == []
    wait_until_due(runtime, third)
    webhooks.deliver(writer, third, worker_id=WORKER)
    assert delivery(runtime, third).state == "delivered"
    (received,) = receiver.received
    assert verify(newer.secret, received.headers, received.body)


# --- /readyz --------------------------------------------------------------------------------------------


def test_readyz_is_503_while_the_keyring_cannot_open_a_stored_secret_and_200_with_the_key(
    api: Api, client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
):
    # every probe checks afresh (raising=False: the test runs on code without the cache too)
    monkeypatch.setattr(readiness, "KEY_CHECK_SECONDS", 0.0, raising=False)
    token = api.user("planner")
    connection_id = api.connect(token, api.occasion(token)).json()["connection"]["id"]
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text

    # another process, whose keyring has a newer key this one lacks, stores a secret with it
    newer = generate_key()
    writer = newer_writer(runtime, newer)
    with runtime.db.write() as session:
        credentials.store_secret(session, writer.keyring, connection_id, "api_key", "pk_live_NEWERNEWERNEWER")

    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503, not_ready.text
    assert not_ready.json()["status"] == "not_ready"
    assert not_ready.json()["checks"]["secret_keys"] == "missing 1 key(s) the stored secrets name"
    assert key_id(newer) not in not_ready.text  # /readyz is public: counted, not named

    # this process could not start again as it is, and starts with the newer key supplied
    with pytest.raises(MissingKeys, match=key_id(newer)):
        build_runtime(runtime.settings)
    with_key = build_runtime(
        runtime.settings.model_copy(update={"secret_keys": f"{newer},{runtime.settings.secret_keys}"})
    )
    try:
        with TestClient(create_app(with_key)) as other:
            ready = other.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"database": "ok", "migrations": "current", "secret_keys": "ok"}
    finally:
        with_key.close()


@pytest.mark.no_db
def test_every_sealed_column_is_checked_for_its_key():
    """A table that stores ciphertext names its key id in a column start-up and /readyz read."""
    from tovplus.db.models import Base
    from tovplus.db.sealed import SEALED_KEY_ID_COLUMNS

    checked = {(c.class_.__tablename__, c.key) for c in SEALED_KEY_ID_COLUMNS}
    sealed = {
        (table.name, column.name)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if column.name.endswith("key_id")
        and column.name.removesuffix("key_id") + "ciphertext" in table.columns
    }
    assert sealed, "no sealed columns found: the naming convention changed"
    assert sealed <= checked
