"""The operator's OAuth clients: ``tovplus oauth set-client`` / ``clients`` and ``TOVPLUS_OAUTH_CLIENTS``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tests.oauth import flow_support as support
from tovplus import cli
from tovplus.db.models import OAuthClient
from tovplus.runtime import Runtime, build_runtime
from tovplus.services import oauth
from tovplus.settings import OAuthClientSetting, Settings

SECRET = "cs_live_CLI_secret_abcdefghijklmnop"


@pytest.fixture
def env(
    database_url: str, tmp_path: Path, secret_keys: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """What the command sees: the test database and keys, and a registry with the oauth2 adapter."""
    monkeypatch.setattr("tovplus.runtime.default_registry", support.registry)
    return {
        "TOVPLUS_DATABASE_URL": database_url,
        "TOVPLUS_DATA_DIR": str(tmp_path / "data"),
        "TOVPLUS_SECRET_KEYS": secret_keys,
        "TOVPLUS_ENVIRONMENT": "test",
        "TOVPLUS_OAUTH_CLIENTS": "",
    }


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, ["oauth", *args], env=env, input=stdin)
    return result.exit_code, result.output


def test_set_client_reads_the_secret_from_stdin_and_seals_it(
    env: dict[str, str], flow_runtime: Runtime
) -> None:
    code, out = run(
        env,
        "set-client",
        support.KEY,
        "--client-id",
        "cid-1",
        "--client-secret-stdin",
        stdin=SECRET + "\n",
    )
    assert code == 0, out
    assert SECRET not in out
    assert "cid-1" in out
    with flow_runtime.db.read() as session:
        row = session.get(OAuthClient, support.KEY)
        assert row is not None
        assert row.client_id == "cid-1"
        assert row.updated_by == "cli"
        assert SECRET.encode() not in row.secret_ciphertext
        creds = oauth.client_credentials(session, flow_runtime.keyring, support.KEY)
    assert creds is not None
    assert creds.client_secret == SECRET
    code, out = run(env, "clients")
    assert code == 0, out
    assert f"{support.KEY}\tcid-1" in out
    assert SECRET not in out
    code, out = run(env, "clients", "--json")
    listed = json.loads(out)["clients"]
    assert {"integration_key": support.KEY, "client_id": "cid-1"} in listed
    assert all(c["client_id"] is None for c in listed if c["integration_key"] != support.KEY)


def test_set_client_prompts_for_the_secret_without_echoing_it(
    env: dict[str, str], flow_runtime: Runtime
) -> None:
    code, out = run(env, "set-client", support.KEY, "--client-id", "cid-2", stdin=SECRET + "\n")
    assert code == 0, out
    assert "Client secret" in out
    assert SECRET not in out
    with flow_runtime.db.read() as session:
        creds = oauth.client_credentials(session, flow_runtime.keyring, support.KEY)
    assert creds is not None
    assert (creds.client_id, creds.client_secret) == ("cid-2", SECRET)


@pytest.mark.parametrize(
    ("key", "words"),
    [("no_such_adapter", "There is no integration"), ("printing_partner", "not OAuth2")],
)
def test_an_unknown_or_api_key_adapter_is_exit_2_and_stores_nothing(
    env: dict[str, str], flow_runtime: Runtime, key: str, words: str
) -> None:
    code, out = run(
        env,
        "set-client",
        key,
        "--client-id",
        "x",
        "--client-secret-stdin",
        stdin=SECRET + "\n",
    )
    assert code == 2, out
    assert words in out
    with flow_runtime.db.read() as session:
        assert list(session.scalars(select(OAuthClient))) == []


@pytest.mark.parametrize(("client_id", "secret"), [("", SECRET), ("cid", ""), ("a\tb" * 300, SECRET)])
def test_bad_input_is_exit_2(env: dict[str, str], flow_runtime: Runtime, client_id: str, secret: str) -> None:
    code, out = run(
        env,
        "set-client",
        support.KEY,
        "--client-id",
        client_id,
        "--client-secret-stdin",
        stdin=secret + "\n",
    )
    assert code == 2, out
    with flow_runtime.db.read() as session:
        assert list(session.scalars(select(OAuthClient))) == []


def test_clients_says_which_adapter_has_none(env: dict[str, str], flow_runtime: Runtime) -> None:
    code, out = run(env, "clients")
    assert code == 0, out
    assert f"{support.KEY}\t(not configured)" in out


def _with_clients(settings: Settings, secret: str, client_id: str = "from-settings") -> Settings:
    given = {support.KEY: OAuthClientSetting(client_id=client_id, client_secret=secret)}
    return settings.model_copy(update={"oauth_clients": given})


def test_settings_fill_in_a_missing_client_and_never_override_the_clis(settings: Settings) -> None:
    rt = build_runtime(_with_clients(settings, SECRET), registry=support.registry())
    try:
        assert oauth.apply_client_settings(rt) == [support.KEY]
        assert oauth.apply_client_settings(rt) == []  # the same values: nothing to write
        with rt.db.read() as session:
            creds = oauth.client_credentials(session, rt.keyring, support.KEY)
        assert creds is not None
        assert (creds.client_id, creds.client_secret) == ("from-settings", SECRET)
        rt.settings = _with_clients(settings, "rotated-secret-value-123")
        assert oauth.apply_client_settings(rt) == [support.KEY]  # settings keep their own row current
        with rt.db.write() as session:
            oauth.set_client(session, rt.keyring, support.KEY, "from-cli", SECRET, actor="cli")
        rt.settings = _with_clients(settings, "another-secret-value-456", "other")
        assert oauth.apply_client_settings(rt) == []
        with rt.db.read() as session:
            creds = oauth.client_credentials(session, rt.keyring, support.KEY)
        assert creds is not None
        assert (creds.client_id, creds.client_secret) == ("from-cli", SECRET)
    finally:
        rt.close()


def test_settings_for_an_unknown_or_api_key_adapter_are_skipped(settings: Settings) -> None:
    given = {
        "nope": OAuthClientSetting(client_id="a", client_secret="b"),
        "printing_partner": OAuthClientSetting(client_id="a", client_secret="b"),
    }
    rt = build_runtime(settings.model_copy(update={"oauth_clients": given}), registry=support.registry())
    try:
        assert oauth.apply_client_settings(rt) == []
        with rt.db.read() as session:
            assert list(session.scalars(select(OAuthClient))) == []
    finally:
        rt.close()
