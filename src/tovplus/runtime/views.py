"""The one base of every typed view that services build and the API and pages share.

A view is a frozen Pydantic model: the API uses it as its ``response_model`` (FastAPI sends it
without validating it again), and the pages read it in Jinja either as attributes or, for code
written against the old dicts, as a mapping (``view["state"]``). Frozen, so equal parts (a
scope, an empty validation) can be shared between views instead of built per row.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class View(BaseModel):
    """A read-only view of one resource, readable as attributes or as a mapping."""

    model_config = ConfigDict(frozen=True)

    def __getitem__(self, name: str) -> Any:
        """Read a field as from a mapping (``entry["actor"]``)."""
        if name in type(self).model_fields:
            return getattr(self, name)
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        """Read a field as from a mapping, ``default`` when the view has no such field."""
        return getattr(self, name) if name in type(self).model_fields else default
