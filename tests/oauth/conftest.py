"""Fixtures of the connect-flow tests (``test_flow_*``): a runtime that knows the oauth2 test adapter,
its TestClient, and the fake partner. Their own names, so other tests here keep the usual ones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.oauth.fake_partner import FakePartner
from tests.oauth.flow_support import registry
from tovplus.app import create_app
from tovplus.runtime import Runtime, build_runtime
from tovplus.settings import Settings


@pytest.fixture
def flow_runtime(settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(settings, registry=registry())
    yield rt
    rt.close()


@pytest.fixture
def flow_client(flow_runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(flow_runtime), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def fake_partner() -> Iterator[FakePartner]:
    with FakePartner() as fake:
        yield fake
