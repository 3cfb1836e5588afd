"""The server stack: uvloop + httptools when installed (``uvicorn[standard]``), named explicitly."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from tovplus import cli

pytestmark = pytest.mark.no_db


def test_the_production_stack_is_installed_and_chosen() -> None:
    assert cli.server_stack() == {"loop": "uvloop", "http": "httptools"}


def test_falls_back_to_asyncio_and_h11_when_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert cli.server_stack() == {"loop": "asyncio", "http": "h11"}


def test_partner_sim_runs_on_that_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(options))
    result = CliRunner().invoke(cli.app, ["partner-sim", "--port", "8199"])
    assert result.exit_code == 0, result.output
    assert seen["loop"] == "uvloop"
    assert seen["http"] == "httptools"
