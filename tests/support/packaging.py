"""Installing a test-made Python package aside: into its own folder, never into the venv."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def install_aside(package: Path, site: Path) -> None:
    """``pip install --target site package``: no index, no build isolation, no dependencies.

    Use the result with ``PYTHONPATH=site`` in a subprocess, so no other test sees it.
    """
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--no-build-isolation",
            "--no-deps",
            "--disable-pip-version-check",
            "--target",
            str(site),
            str(package),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def assert_own_tests_pass(package: Path, env: dict[str, str], *, timeout: float = 180) -> None:
    """A generated package's own tests pass in a subprocess: all of them, none skipped."""
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error::DeprecationWarning"],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout
    assert "failed" not in tests.stdout
    assert "skipped" not in tests.stdout  # a scaffold scripts its partner, so every check runs


def assert_lints_clean(package: Path) -> None:
    """The package passes ruff under its own settings."""
    ruff = Path(sys.executable).with_name("ruff")
    lint = subprocess.run(
        [str(ruff), "check", "--no-cache", "."],
        cwd=package,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout
