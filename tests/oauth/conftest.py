"""The flow tests' runtime knows the oauth2 test adapter; a fake partner serves its OAuth endpoints."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.oauth.fake_partner import FakePartner
from tests.oauth.support import registry
from tovplus.runtime import Runtime, build_runtime
from tovplus.settings import Settings


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(settings, registry=registry())
    yield rt
    rt.close()


@pytest.fixture
def partner() -> Iterator[FakePartner]:
    with FakePartner() as fake:
        yield fake
