"""The catalog of installed adapters."""

from __future__ import annotations

from typing import Any

from tovplus.runtime import Runtime


def catalog(rt: Runtime) -> list[dict[str, Any]]:
    """The contract's ``Adapter`` objects, in registry order."""
    return [adapter.describe() for adapter in rt.registry]
