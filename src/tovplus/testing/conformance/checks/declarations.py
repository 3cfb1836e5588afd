"""The ``declarations`` check: the registry would load the adapter, and ``describe()`` is complete JSON."""

from __future__ import annotations

import json

import httpx

from tovplus.integrations.auth import OAuth2Auth
from tovplus.integrations.contract import Adapter, Mode
from tovplus.integrations.fields import FieldType
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
        "auth",
        "supports_credential_check",
    }
)


def oauth_problems(a: Adapter, auth: OAuth2Auth) -> list[str]:
    """What the registry does not refuse but breaks the connect flow: optional URL fields, URLs
    that are not absolute https addresses once filled."""
    problems = []
    fields = {f.key: f for f in a.config_fields}
    for key in sorted(auth.config_keys()):
        if key in fields and not fields[key].required:
            problems.append(f"auth builds its URLs from config field {key!r}, which is not required")
    filled = {
        key: "https://partner.example" if f.type is FieldType.URL else "sample" for key, f in fields.items()
    }
    for label, url in zip(("authorize_url", "token_url"), auth.urls(filled), strict=True):
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError):
            parsed = None
        if parsed is None or parsed.scheme != "https" or not parsed.host:
            problems.append(f"auth {label} {url!r} is not an absolute https URL once its fields are filled")
    return problems


def check_declarations(s: Subject) -> list[str]:
    """The registry's own rules (``declaration_problems``) plus a few the registry cannot enforce."""
    a = s.adapter
    problems = list(declaration_problems(a))
    if problems:
        return problems  # describe() and the rest may not even work
    if a.mode is Mode.CALLBACK and not a.supports_inbound_callbacks:
        problems.append("mode 'callback' needs supports_inbound_callbacks")
    if a.oauth2 is not None:
        problems += oauth_problems(a, a.oauth2)
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
