"""The ``secrets`` check: no secret field, and no secret value, in ``describe()``, ``public_config()``
or validation messages."""

from __future__ import annotations

from tovplus.integrations.redaction import public_config
from tovplus.testing.conformance.checks.common import Subject, dump
from tovplus.testing.hooks import run_validation

#: What ``describe()`` may show of a secret field.
PUBLIC_FIELD_KEYS = frozenset({"key", "label", "type", "required", "help", "choices"})


def check_secrets(s: Subject) -> list[str]:
    """Look for secret fields and the sample secrets' values in every public view of the adapter."""
    a = s.adapter
    problems: list[str] = []
    secret_keys = [f.key for f in a.secret_fields]
    described = a.describe()
    listed = [f.get("key") for f in described.get("config_fields", [])]
    for key in secret_keys:
        if key in listed:
            problems.append(f"describe() lists secret field {key!r} among the config fields")
    for entry in described.get("secret_fields", []):
        extra = sorted(set(entry) - PUBLIC_FIELD_KEYS)
        if extra:
            problems.append(f"describe() shows {', '.join(extra)} of secret field {entry.get('key')!r}")
    text = dump(described)
    for key in s.leaks(text):
        problems.append(f"describe() contains the value of secret {key!r}")
    # A planner who pastes a secret into the config must not see it echoed back.
    polluted = {**s.config, **s.secrets}
    shown = public_config(a, polluted)
    for key in secret_keys:
        if key in shown:
            problems.append(f"public_config() shows secret field {key!r}")
    for key in s.leaks(dump(shown)):
        problems.append(f"public_config() shows the value of secret {key!r}")
    result = run_validation(a, config=polluted, secrets=s.secrets, allow_private_urls=True)
    for key in s.leaks(dump([repr(i) for i in (*result.errors, *result.warnings)])):
        problems.append(f"a validation message contains the value of secret {key!r}")
    return problems
