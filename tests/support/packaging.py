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
