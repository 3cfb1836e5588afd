"""Settings: every value from a ``TOVPLUS_`` variable; a bad one stops the process with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.processes.test_cli import assert_one_line_failure, cli_env, run_cli
from tovplus.errors import ConfigurationError
from tovplus.settings import Settings, get_settings, load_settings

pytestmark = pytest.mark.no_db


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``TOVPLUS_*`` variable from the outside leaks into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith("TOVPLUS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def failure(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = info.value.message
    assert "\n" not in message
    assert message.startswith("invalid settings: ")
    return message


def test_defaults():
    settings = load_settings()
    assert settings.environment == "development"
    assert settings.data_dir == Path("./var")
    assert settings.allow_private_urls is False
    assert settings.secret_keys is None
    assert settings.resolved_database_url == f"sqlite:///{(Path('./var') / 'tovplus.db').resolve()}"
    assert settings.sync_retry_delays == (30.0, 120.0, 600.0)
    assert settings.webhook_retry_delays == (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0)


def test_values_come_from_tovplus_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("TOVPLUS_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("TOVPLUS_ALLOW_PRIVATE_URLS", "true")
    monkeypatch.setenv("TOVPLUS_ENVIRONMENT", "production")
    monkeypatch.setenv("TOVPLUS_SYNC_INTERVAL_SECONDS", "90")
    monkeypatch.setenv("TOVPLUS_DATABASE_URL", "postgresql://db.example/tov")
    settings = load_settings()
    assert settings.data_dir == tmp_path / "elsewhere"
    assert settings.allow_private_urls is True
    assert settings.secure_cookies is True
    assert settings.sync_interval_seconds == 90
    assert settings.resolved_database_url == "postgresql://db.example/tov"
    assert settings.resolved_queue_url == f"sqlite:///{(tmp_path / 'elsewhere' / 'queue.db').resolve()}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30,120,600", (30.0, 120.0, 600.0)),
        ("1, 2.5 ,3,", (1.0, 2.5, 3.0)),
        ("0", (0.0,)),
        ("0.05,0.05", (0.05, 0.05)),
    ],
)
def test_comma_separated_retry_delays_parse(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: tuple[float, ...]
):
    monkeypatch.setenv("TOVPLUS_SYNC_RETRY_DELAYS", value)
    monkeypatch.setenv("TOVPLUS_WEBHOOK_RETRY_DELAYS", value)
    settings = load_settings()
    assert settings.sync_retry_delays == expected
    assert settings.webhook_retry_delays == expected


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TOVPLUS_ALLOW_PRIVATE_URLS", "maybe", "valid boolean"),
        ("TOVPLUS_RUN_WORKER_IN_SERVE", "2", "valid boolean"),
        ("TOVPLUS_ENVIRONMENT", "staging", "'development', 'production' or 'test'"),
        ("TOVPLUS_LOG_LEVEL", "LOUD", "'DEBUG'"),
        ("TOVPLUS_SYNC_RETRY_DELAYS", "30,-1", "must not be negative"),
        ("TOVPLUS_WEBHOOK_RETRY_DELAYS", "-5", "must not be negative"),
        ("TOVPLUS_SYNC_RETRY_DELAYS", "5,abc", "'abc' is not a number of seconds"),
        ("TOVPLUS_SYNC_RETRY_DELAYS", "", "at least one number"),
        ("TOVPLUS_SYNC_RETRY_DELAYS", ",,", "at least one number"),
        ("TOVPLUS_SYNC_RETRY_DELAYS", "nan", "finite"),
        ("TOVPLUS_WEBHOOK_RETRY_DELAYS", "5,inf", "finite"),
        ("TOVPLUS_SYNC_RETRY_DELAYS", "1e400", "finite"),
        ("TOVPLUS_SYNC_RETRY_DELAYS", "99999999", "at most"),
        ("TOVPLUS_SYNC_INTERVAL_SECONDS", "0", "greater than or equal to 1"),
        ("TOVPLUS_SYNC_INTERVAL_SECONDS", "soon", "valid integer"),
        ("TOVPLUS_MAX_BODY_BYTES", "12", "greater than or equal to 1024"),
        ("TOVPLUS_LEASE_SECONDS", "-1", "greater than 0"),
        ("TOVPLUS_SCHEDULER_TICK_SECONDS", "inf", "finite"),
    ],
)
def test_an_invalid_value_is_one_clear_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
):
    message = failure(monkeypatch, **{name: value})
    assert f"{name}: " in message
    assert expected in message
    assert "Value error" not in message


def test_several_invalid_values_are_named_in_the_same_line(monkeypatch: pytest.MonkeyPatch):
    message = failure(
        monkeypatch,
        TOVPLUS_ALLOW_PRIVATE_URLS="maybe",
        TOVPLUS_ENVIRONMENT="staging",
        TOVPLUS_SYNC_RETRY_DELAYS="-1",
    )
    for name in ("TOVPLUS_ALLOW_PRIVATE_URLS", "TOVPLUS_ENVIRONMENT", "TOVPLUS_SYNC_RETRY_DELAYS"):
        assert name in message


def test_the_secret_keys_value_is_not_in_the_repr():
    settings = Settings(secret_keys="k1:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMw")
    assert "c2VjcmV0" not in repr(settings)


def test_settings_are_frozen_and_cached(monkeypatch: pytest.MonkeyPatch):
    get_settings.cache_clear()
    try:
        first = get_settings()
        monkeypatch.setenv("TOVPLUS_ENVIRONMENT", "production")
        assert get_settings() is first
        with pytest.raises(ValueError, match="frozen"):
            first.environment = "production"  # type: ignore[misc]
    finally:
        get_settings.cache_clear()


# --- the process stops with one line, not a traceback ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TOVPLUS_ALLOW_PRIVATE_URLS", "maybe"),
        ("TOVPLUS_SYNC_RETRY_DELAYS", "30,-5"),
        ("TOVPLUS_SECRET_KEYS", "k1:not-a-key"),
    ],
)
def test_serve_with_a_bad_setting_exits_with_one_line_and_no_traceback(tmp_path: Path, name: str, value: str):
    result = run_cli("serve", "--port", "1", env=cli_env(tmp_path / "data", **{name: value}))
    line = assert_one_line_failure(result)
    assert line.startswith("tovplus: ")
    assert name in line or "secret key" in line
    assert "not-a-key" not in line  # key material is never echoed
    assert not (tmp_path / "data" / "tovplus.db").exists()  # stopped before touching anything
