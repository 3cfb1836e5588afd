"""Test fixtures: a migrated database per test on the backend named by ``TOVPLUS_TEST_DB``.

``TOVPLUS_TEST_DB=sqlite`` (default) or ``postgresql``; the PostgreSQL server is
``TOVPLUS_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``).
Each test session migrates one database once; each test gets it empty again.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests import factories
from tests.support import event_schemas
from tovplus.app import create_app
from tovplus.db.migrate import upgrade
from tovplus.db.models import Base
from tovplus.db.session import create_db_engine
from tovplus.runtime import Runtime, build_runtime
from tovplus.runtime.keyring import generate_key
from tovplus.settings import Settings

BACKEND = os.environ.get("TOVPLUS_TEST_DB", "sqlite")
POSTGRES_ADMIN_URL = os.environ.get(
    "TOVPLUS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def pytest_configure(config: pytest.Config) -> None:
    event_schemas.install()  # every webhook payload the suite emits must match the event catalog


def pytest_report_header(config: pytest.Config) -> str:
    return f"tovplus test database backend: {BACKEND}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the PostgreSQL pass, deselect tests that never touch a database (they ran on SQLite)."""
    if BACKEND != "postgresql":
        return
    keep = [i for i in items if i.get_closest_marker("no_db") is None]
    dropped = [i for i in items if i.get_closest_marker("no_db") is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


class PostgresDatabases:
    """Creates and drops throwaway databases on the test server."""

    def __init__(self, admin_url: str) -> None:
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            with self.admin.connect() as c:
                c.execute(text("SELECT 1"))
        except Exception as exc:  # pragma: no cover - the environment is broken
            pytest.exit(f"PostgreSQL is not reachable at {admin_url}: {exc}", returncode=3)
        self.created: list[str] = []

    def create(self) -> str:
        name = f"tovplus_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as c:
            for name in self.created:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresDatabases]:
    dbs = PostgresDatabases(POSTGRES_ADMIN_URL)
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> str:
    """A migrated database: a SQLite file to copy, or a PostgreSQL database to truncate."""
    if BACKEND == "postgresql":
        url = request.getfixturevalue("postgres").create()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('template') / 'template.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _truncate_postgres(url: str) -> None:
    engine = create_db_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as c:
        c.execute(text(f"TRUNCATE {tables} CASCADE"))
    engine.dispose()


def empty_database(migrated_template: str, directory: Path) -> str:
    """A migrated, empty database: the truncated template (PostgreSQL) or a copy of it in ``directory``."""
    if BACKEND == "postgresql":
        _truncate_postgres(migrated_template)
        return migrated_template
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "tovplus.db"
    shutil.copyfile(Path(make_url(migrated_template).database or ""), target)
    return f"sqlite:///{target}"


def make_settings(database_url: str, data_dir: Path, secret_keys: str | None = None) -> Settings:
    """The settings every test runtime uses: test environment, in-memory queue, private URLs allowed."""
    return Settings(
        environment="test",
        data_dir=data_dir,
        database_url=database_url,
        queue_url="memory://",
        secret_keys=secret_keys or generate_key(),
        allow_private_urls=True,
    )


@pytest.fixture
def database_url(migrated_template: str, tmp_path: Path) -> str:
    """A migrated, empty database for one test."""
    return empty_database(migrated_template, tmp_path)


@pytest.fixture
def secret_keys() -> str:
    return generate_key()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, secret_keys: str) -> Settings:
    return make_settings(database_url, tmp_path / "data", secret_keys)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(settings)
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), raise_server_exceptions=False) as c:
        yield c


# --- helpers -------------------------------------------------------------------------------


class Api:
    """A thin helper around the test client for common set-up calls."""

    def __init__(self, client: TestClient, runtime: Runtime) -> None:
        self.client = client
        self.runtime = runtime

    def user(self, role: str = "planner", email: str | None = None) -> str:
        """A new user's bearer token (``tests.factories.user``)."""
        token = factories.user(self.runtime, role, email=email).token
        assert token is not None
        return token

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def occasion(self, token: str, name: str = "Wedding") -> str:
        r = self.client.post(
            "/v1/occasions", json={"name": name, "starts_on": "2027-06-12"}, headers=self.auth(token)
        )
        assert r.status_code == 201, r.text
        return str(r.json()["occasion"]["id"])

    def event(self, token: str, occasion_id: str, name: str = "Dinner") -> str:
        r = self.client.post(
            f"/v1/occasions/{occasion_id}/events", json={"name": name}, headers=self.auth(token)
        )
        assert r.status_code == 201, r.text
        return str(r.json()["event"]["id"])

    def connect(self, token: str, occasion_id: str, **body: Any) -> Any:
        payload: dict[str, Any] = {
            "integration_key": "printing_partner",
            "config": {"account_id": "acct-123", "api_base_url": "https://printer.example.com/api"},
            "secrets": {"api_key": "pk_live_ABCDEFGHIJKLMNOP"},
        }
        payload.update(body)
        return self.client.post(
            f"/v1/occasions/{occasion_id}/integrations/connections", json=payload, headers=self.auth(token)
        )

    def patch(self, token: str, occasion_id: str, connection_id: str, **body: Any) -> Any:
        return self.client.patch(
            f"/v1/occasions/{occasion_id}/integrations/connections/{connection_id}",
            json=body,
            headers=self.auth(token),
        )


@pytest.fixture
def api(client: TestClient, runtime: Runtime) -> Api:
    return Api(client, runtime)


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Check the status and the contract's error envelope; return the ``error`` object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["fields"], list)
    if code is not None:
        assert error["code"] == code, error
    return dict(error)
