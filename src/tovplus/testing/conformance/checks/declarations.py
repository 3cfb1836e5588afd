"""The ``declarations`` check: the registry would load the adapter, and ``describe()`` is complete JSON."""

from __future__ import annotations

import json

from tovplus.integrations.contract import Mode
from tovplus.integrations.registry import declaration_problems
from tovplus.testing.conformance.checks.common import Subject

#: The keys of the contract's catalog ``Adapter`` object.
DESCRIBED_KEYS = frozenset(
    {
        "integration_key",
        "name",
        "description",
        "category",
        "direction",
        "mode",
        "capabilities",
        "action_keys",
        "config_fields",
        "secret_fields",
        "supports_background_sync",
        "supports_inbound_callbacks",
    }
)


def check_declarations(s: Subject) -> list[str]:
    """The registry's own rules (``declaration_problems``) plus a few the registry cannot enforce."""
    a = s.adapter
    problems = list(declaration_problems(a))
    if problems:
        return problems  # describe() and the rest may not even work
    if a.mode is Mode.CALLBACK and not a.supports_inbound_callbacks:
        problems.append("mode 'callback' needs supports_inbound_callbacks")
    for f in a.secret_fields:
        if f.default is not None:
            problems.append(f"secret field {f.key!r} declares a default: secrets come from the planner only")
    try:
        described = json.loads(json.dumps(a.describe(), allow_nan=False))
    except Exception as exc:
        return [*problems, f"describe() failed or is not JSON: {type(exc).__name__}: {exc}"]
    missing = sorted(DESCRIBED_KEYS - set(described))
    if missing:
        problems.append(f"describe() lacks {', '.join(missing)}")
    return problems
