"""The ``tovplus`` command line, run for real in subprocesses.

The helpers at the top (``cli_env``, ``run_cli``, ``served``) are also used by the
registry, credentials and settings tests that need a real process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import assert_error
from tovplus.db.models import User
from tovplus.runtime import Runtime

TOVPLUS = Path(sys.executable).with_name("tovplus")


def cli_env(data_dir: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment for a ``tovplus`` subprocess: no inherited ``TOVPLUS_*`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOVPLUS_")}
    env["TOVPLUS_DATA_DIR"] = str(data_dir)
    if database_url is not None:
        env["TOVPLUS_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    assert TOVPLUS.exists(), f"the console script is missing at {TOVPLUS}"
    return subprocess.run(
        [str(TOVPLUS), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def assert_one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    """A failed command: non-zero exit, nothing on stdout, one line on stderr, no traceback."""
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(env: dict[str, str], *, startup_timeout: float = 30) -> Iterator[str]:
    """Run ``tovplus serve`` on a free loopback port; yield its base URL; stop it afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        [str(TOVPLUS), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"tovplus serve exited with {proc.returncode}:\n{out}\n{err}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("tovplus serve did not answer /healthz in time")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def user_count(runtime: Runtime) -> int:
    with runtime.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(User)) or 0)


# --- users create ----------------------------------------------------------------------------


def test_users_create_json_prints_one_object_whose_token_reads_the_catalog(
    database_url: str, tmp_path: Path, client: TestClient
):
    env = cli_env(tmp_path / "data", database_url)
    result = run_cli("users", "create", "--email", "Ola@Example.com", "--role", "planner", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1, result.stdout
    body = json.loads(result.stdout)
    assert set(body) == {"user_id", "email", "role", "token"}
    assert body["email"] == "ola@example.com"
    assert body["role"] == "planner"
    assert body["token"].startswith("tovu_")
    assert isinstance(body["user_id"], str)
    assert body["user_id"]

    # the token works against the same database from another process
    r = client.get("/v1/integrations/catalog", headers={"Authorization": f"Bearer {body['token']}"})
    assert r.status_code == 200, r.text
    assert {a["integration_key"] for a in r.json()["adapters"]} >= {
        "printing_partner",
        "venue_ops",
        "guest_messaging",
    }
    # and identifies that user: the planner may create an occasion with it
    r = client.post(
        "/v1/occasions",
        json={"name": "From the CLI", "starts_on": "2027-01-02"},
        headers={"Authorization": f"Bearer {body['token']}"},
    )
    assert r.status_code == 201, r.text


def test_users_create_without_json_prints_the_token(database_url: str, tmp_path: Path, client: TestClient):
    env = cli_env(tmp_path / "data", database_url)
    result = run_cli("users", "create", "--email", "admin@example.com", "--role", "admin", env=env)
    assert result.returncode == 0, result.stderr
    token_lines = [line for line in result.stdout.splitlines() if line.startswith("token: ")]
    assert len(token_lines) == 1, result.stdout
    token = token_lines[0].removeprefix("token: ")
    r = client.get("/v1/integrations/catalog", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--email", "x@example.com", "--role", "superuser"], "role"),
        (["--email", "not-an-email", "--role", "planner"], "email"),
    ],
)
def test_users_create_refuses_bad_input_with_one_line(
    database_url: str, tmp_path: Path, runtime: Runtime, args: list[str], expected: str
):
    result = run_cli("users", "create", *args, "--json", env=cli_env(tmp_path / "data", database_url))
    line = assert_one_line_failure(result)
    assert expected in line.lower()
    assert user_count(runtime) == 0


def test_users_create_refuses_a_duplicate_email(database_url: str, tmp_path: Path, runtime: Runtime):
    env = cli_env(tmp_path / "data", database_url)
    first = run_cli("users", "create", "--email", "dup@example.com", "--role", "planner", env=env)
    assert first.returncode == 0, first.stderr
    again = run_cli("users", "create", "--email", "DUP@example.com", "--role", "admin", "--json", env=env)
    line = assert_one_line_failure(again)
    assert "already exists" in line
    assert user_count(runtime) == 1


# --- db upgrade, serve, demo -------------------------------------------------------------------


def test_db_upgrade_reports_the_revision(database_url: str, tmp_path: Path):
    result = run_cli("db", "upgrade", env=cli_env(tmp_path / "data", database_url))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("database at revision ")
    assert result.stdout.split()[-1] != "None"


@pytest.mark.no_db  # the embedded default: a fresh SQLite file in a fresh data dir
@pytest.mark.slow
def test_serve_creates_and_migrates_the_embedded_database_on_first_start(tmp_path: Path):
    data_dir = tmp_path / "fresh"
    env = cli_env(data_dir)
    assert not data_dir.exists()
    with served(env) as base:
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "migrations": "current", "secret_keys": "ok"}
        assert_error(httpx.get(f"{base}/v1/integrations/catalog", timeout=5), 401, "unauthenticated")
    assert (data_dir / "tovplus.db").exists()
    assert (data_dir / "secret.keys").stat().st_mode & 0o777 == 0o600


def test_demo_seeds_once_and_can_run_again(database_url: str, tmp_path: Path, runtime: Runtime):
    env = cli_env(tmp_path / "data", database_url, TOVPLUS_ALLOW_PRIVATE_URLS="true")
    first = run_cli("demo", env=env)
    assert first.returncode == 0, first.stderr
    assert "tovu_" in first.stdout
    users = user_count(runtime)
    assert users >= 2
    second = run_cli("demo", env=env)
    assert second.returncode == 0, second.stderr
    assert user_count(runtime) == users


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("database_url", "expected"),
    [
        ("nonsense://somewhere", "TOVPLUS_DATABASE_URL"),
        ("postgresql://postgres:hunter2hunter2@127.0.0.1:1/nowhere", "cannot use the database"),
    ],
)
def test_an_unusable_database_is_one_line_without_the_password(
    tmp_path: Path, database_url: str, expected: str
):
    result = run_cli("db", "upgrade", env=cli_env(tmp_path / "data", database_url))
    line = assert_one_line_failure(result)
    assert expected in line
    assert "hunter2" not in result.stderr


@pytest.mark.no_db
def test_a_data_dir_that_cannot_be_created_is_one_line(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_cli("users", "create", "--email", "a@example.com", "--role", "planner", env=cli_env(blocker))
    line = assert_one_line_failure(result)
    assert str(blocker) in line
