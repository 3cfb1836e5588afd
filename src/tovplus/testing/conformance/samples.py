"""Sample connections for the checks: valid values derived from the field declarations alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tovplus.integrations.contract import Adapter
from tovplus.integrations.fields import Field, FieldType
from tovplus.testing.hooks import instance_of
from tovplus.testing.junk import hypothesis_available

#: Stands for "no sample callback payload given" (``None`` is a payload like any other).
NOT_GIVEN: Any = object()


class SampleError(ValueError):
    """No valid sample could be derived from the declarations; give one explicitly."""


def _string_candidates(f: Field, *, secret: bool) -> Iterator[str]:
    if isinstance(f.default, str):
        yield f.default
    if f.type is FieldType.URL:
        yield "https://partner.example.com/api"
        return
    if secret:
        yield f"conformance-secret-{f.key}-7Hq2x9Lw"
        yield f"CONFORMANCE_{f.key.upper()}_7HQ2X9LW"
    yield "sample-value-1"
    yield "sample"
    yield "ABC123"
    yield "abc123"
    yield "a" * max(1, f.min_length or 1)


def _sample_value(f: Field, *, secret: bool) -> Any:
    """A value that passes ``f``'s declaration, derived from it alone."""
    if f.type is FieldType.BOOLEAN:
        return f.default if isinstance(f.default, bool) else False
    if f.type is FieldType.INTEGER:
        if isinstance(f.default, int) and not isinstance(f.default, bool):
            return f.default
        low = f.minimum if f.minimum is not None else 1
        return low if f.maximum is None else min(low, f.maximum)
    if f.type is FieldType.ENUM and f.choices:
        return f.default if f.default in f.choices else f.choices[0]
    for candidate in _string_candidates(f, secret=secret):
        if f.check(candidate, f.key, allow_private_urls=False) is None:
            return candidate
    if f.pattern and hypothesis_available():
        from hypothesis import find, settings
        from hypothesis import strategies as st

        try:
            return find(
                st.from_regex(f.pattern, fullmatch=True),
                lambda v: f.check(v, f.key, allow_private_urls=False) is None and len(v) >= 6,
                settings=settings(database=None, max_examples=500, derandomize=True),
            )
        except Exception:  # noqa: S110 - fall through to the clear error below
            pass
    raise SampleError(f"cannot derive a valid value for {f.key!r}; give it in the sample explicitly")


def derive_sample_config(adapter: Adapter | type[Adapter]) -> dict[str, Any]:
    """A config with every required field set to a value its declaration accepts."""
    instance = instance_of(adapter)
    return {f.key: _sample_value(f, secret=False) for f in instance.config_fields if f.required}


def derive_sample_secrets(adapter: Adapter | type[Adapter]) -> dict[str, str]:
    """Recognizable secret values for every declared secret field (searched for in outputs)."""
    instance = instance_of(adapter)
    return {f.key: str(_sample_value(f, secret=True)) for f in instance.secret_fields}


def sample_value(f: Field) -> Any:
    """A value the field's declaration accepts (an action's input, say)."""
    return _sample_value(f, secret=False)
