"""The browser tests' runtime (``rt``): its own migrated SQLite file; a module may override it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.browser.kit import page_runtime
from tovplus.runtime import Runtime


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    with page_runtime(tmp_path) as runtime:
        yield runtime
