"""Bad input for the conformance checks: a fixed corpus, plus Hypothesis strategies when installed."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

#: Values every hook must survive, whatever field they land in.
AWKWARD_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    2**64,
    1.5,
    float("nan"),
    float("inf"),
    "",
    " ",
    "\x00",
    "☃ ünïcødé",
    "x" * 5000,
    "../../etc/passwd",
    "https://",
    "http://127.0.0.1:1/",
    "not-a-date",
    "2026-13-45T99:99:99Z",
    [],
    [None],
    {},
    {"nested": {"deeper": [1, "two", None]}},
)

#: Payloads no callback mapping should accept.
JUNK_PAYLOADS: tuple[Any, ...] = (
    None,
    [],
    [{}],
    "payload",
    "",
    0,
    3.5,
    True,
    {},
    {"unexpected": "field"},
    {"event": None},
    {"event": 42},
)


class ProblemFound(AssertionError):
    """Raised inside a generated example when a check fails (message: what and with which input)."""


def hypothesis_available() -> bool:
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        return False
    return True


def shorten(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def explore(strategy: SearchStrategy[Any], check: Callable[[Any], None], *, examples: int) -> str | None:
    """Run ``check`` on up to ``examples`` generated values; the smallest problem found, or ``None``.

    Runs are reproducible (derandomized) and keep no example database on disk.
    """
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings

    @settings(
        max_examples=max(1, examples),
        deadline=None,
        database=None,
        derandomize=True,
        verbosity=Verbosity.quiet,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(strategy)
    def run(value: Any) -> None:
        check(value)

    try:
        run()
    except ProblemFound as exc:
        return str(exc)
    except Exception as exc:  # Hypothesis itself refused (flaky hook, unsatisfiable strategy...)
        return f"{type(exc).__name__}: {exc}"
    return None


def json_values() -> SearchStrategy[Any]:
    """Any JSON-ish value, nested a little, plus the awkward corpus."""
    from hypothesis import strategies as st

    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=40),
        st.sampled_from(AWKWARD_VALUES),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=8,
    )


def mappings_like(sample: Mapping[str, Any], keys: Sequence[str]) -> SearchStrategy[dict[str, Any]]:
    """Dicts near ``sample``: random keys and values, one value replaced, one key dropped or added."""
    from hypothesis import strategies as st

    values = json_values()
    key_names = st.sampled_from(list(keys)) | st.text(max_size=12) if keys else st.text(max_size=12)
    random_dicts = st.dictionaries(key_names, values, max_size=max(2, len(keys) + 2))
    if not sample:
        return random_dicts
    base = dict(sample)
    names = sorted(base)

    def replaced(pair: tuple[str, Any]) -> dict[str, Any]:
        return {**base, pair[0]: pair[1]}

    def dropped(name: str) -> dict[str, Any]:
        return {k: v for k, v in base.items() if k != name}

    def added(pair: tuple[str, Any]) -> dict[str, Any]:
        return {**base, pair[0]: pair[1]}

    return st.one_of(
        random_dicts,
        st.tuples(st.sampled_from(names), values).map(replaced),
        st.sampled_from(names).map(dropped),
        st.tuples(st.text(min_size=1, max_size=12), values).map(added),
    )
