"""``tovplus adapters new KEY --auth oauth2``: an OAuth2 adapter package that installs, shows in the
catalog as ``oauth2``, asks a new connection for a grant, and passes its own tests (over the fake
authorization server) and the conformance suite as generated; its tests can fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.adapters.test_adapter_kit import on_sys_path, plugin_env
from tests.conftest import Api
from tests.support.packaging import assert_lints_clean, assert_own_tests_pass, install_aside
from tovplus.app import create_app
from tovplus.cli import app as cli_app
from tovplus.integrations.auth import AuthType
from tovplus.integrations.registry import default_registry
from tovplus.runtime import build_runtime
from tovplus.scaffold import render
from tovplus.settings import Settings

PYTHON = Path(sys.executable)
TOVPLUS = PYTHON.with_name("tovplus")
KEY = "balloon_rsvp"
runner = CliRunner()


@pytest.mark.no_db
def test_the_oauth2_variant_declares_oauth2_a_check_and_no_secret() -> None:
    api_key, oauth2 = render("crumb_catering"), render("crumb_catering", AuthType.OAUTH2)
    assert sorted(oauth2) == sorted(api_key)
    adapter = oauth2["src/tovplus_crumb_catering/adapter.py"]
    assert 'authorize_url="{oauth_base_url}/oauth/authorize"' in adapter
    assert 'token_url="{oauth_base_url}/oauth/token"' in adapter
    assert "secret_fields" not in adapter
    assert "ctx.secrets" not in adapter
    assert "def check(self, ctx: CheckContext) -> CheckResult:" in adapter
    assert '"Authorization"' not in adapter  # ctx.http sends the token, not the adapter
    tests = oauth2["tests/test_crumb_catering.py"]
    assert "FakeAuthorizationServer" in tests
    assert "--auth oauth2" in oauth2["README.md"]
    assert "tovplus oauth set-client crumb_catering" in oauth2["README.md"]
    assert all("${" not in text for text in oauth2.values())
    assert oauth2["pyproject.toml"] == api_key["pyproject.toml"]


@pytest.mark.no_db
def test_adapters_new_takes_the_auth_option(tmp_path: Path) -> None:
    made = runner.invoke(cli_app, ["adapters", "new", KEY, "--auth", "oauth2", "--dir", str(tmp_path)])
    assert made.exit_code == 0, made.output
    assert "(BalloonRsvpAdapter, auth oauth2)" in made.output
    assert f"tovplus oauth set-client {KEY}" in made.output
    assert (
        "OAuth2Auth("
        in (tmp_path / "tovplus-balloon-rsvp" / "src" / "tovplus_balloon_rsvp" / "adapter.py").read_text()
    )
    bad = runner.invoke(cli_app, ["adapters", "new", "other_key", "--auth", "saml", "--dir", str(tmp_path)])
    assert bad.exit_code == 2
    assert "saml" in bad.output
    assert not (tmp_path / "tovplus-other-key").exists()


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``tovplus adapters new balloon_rsvp --auth oauth2``, installed into a temporary site folder."""
    root = tmp_path_factory.mktemp("scaffold-oauth2")
    result = subprocess.run(
        [str(TOVPLUS), "adapters", "new", KEY, "--auth", "oauth2", "--dir", str(root)],
        env=plugin_env(root),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    package = root / "tovplus-balloon-rsvp"
    site = root / "site"
    install_aside(package, site)
    return package, site


@pytest.mark.no_db
def test_the_oauth2_package_passes_its_own_tests_the_suite_and_lint(scaffolded: tuple[Path, Path]) -> None:
    package, site = scaffolded
    env = plugin_env(site)
    assert_own_tests_pass(package, env, timeout=180)
    checked = subprocess.run(
        [str(TOVPLUS), "adapters", "check", KEY, "--examples", "20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith(f"adapter '{KEY}': conforms\n")
    assert "  ok  no token or secret is logged, returned, raised or kept" in checked.stdout
    assert_lints_clean(package)


def test_the_oauth2_package_shows_in_the_catalog_and_a_connection_asks_for_a_grant(
    scaffolded: tuple[Path, Path], settings: Settings
) -> None:
    _, site = scaffolded
    with on_sys_path(site, "tovplus_balloon_rsvp"):
        registry = default_registry()
        assert registry.skipped == []
        runtime = build_runtime(settings, registry=registry)
        try:
            with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
                api = Api(client, runtime)
                token = api.user("planner")
                catalog = client.get("/v1/integrations/catalog", headers=api.auth(token))
                assert catalog.status_code == 200, catalog.text
                entry = {a["integration_key"]: a for a in catalog.json()["adapters"]}[KEY]
                assert entry["secret_fields"] == []
                described = registry.get(KEY).describe()
                assert described["auth"] == {
                    "type": "oauth2",
                    "scopes": ["items.read", "notes.write"],
                    "pkce": True,
                }
                assert described["supports_credential_check"] is True
                occasion = api.occasion(token)
                config = {
                    "api_base_url": "https://balloons.example.com/api",
                    "oauth_base_url": "https://auth.balloons.example.com",
                }
                created = api.connect(token, occasion, integration_key=KEY, config=config, secrets={})
                assert created.status_code == 201, created.text
                connection = created.json()["connection"]
                assert connection["state"] == "draft"
                assert [(e["field"], e["code"]) for e in connection["validation"]["errors"]] == [
                    ("authorization", "required")
                ]
        finally:
            runtime.close()
    assert KEY not in default_registry()


@pytest.mark.no_db
def test_a_generated_oauth2_test_fails_when_the_adapter_breaks(
    scaffolded: tuple[Path, Path], tmp_path: Path
) -> None:
    """Log the access token, as the adapter's docstring warns against: the suite's leaks check fails."""
    package, _ = scaffolded
    broken = tmp_path / "broken"
    subprocess.run(["cp", "-r", str(package), str(broken)], check=True, timeout=30)
    adapter = broken / "src" / "tovplus_balloon_rsvp" / "adapter.py"
    source = adapter.read_text()
    marker = "    def sync(self, ctx: SyncContext) -> SyncResult:\n"
    assert source.count(marker) == 1
    source = source.replace(
        marker,
        marker
        + "        import logging\n\n        logging.getLogger('x').debug('token %s', ctx.access_token)\n",
    )
    adapter.write_text(source)
    site = tmp_path / "broken-site"
    install_aside(broken, site)
    result = subprocess.run(
        [str(PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "Conformance and leaks"],
        cwd=broken,
        env=plugin_env(site),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert "sync, when the partner answers as scripted: a log record holds 'access_token'" in result.stdout
