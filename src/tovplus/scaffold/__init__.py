"""``tovplus adapters new``: generate an installable adapter package from templates.

The package holds a working example adapter (pull sync, callbacks, validation, an action), the
``tovplus.adapters`` entry point that makes TOV Plus find it once installed, and tests
built on :mod:`tovplus.testing` that pass as generated. ``auth`` picks the kind of adapter:
typed API-key secrets (the default), or OAuth2 (``--auth oauth2``: ``OAuth2Auth`` with its URLs
from config fields, no secret fields, a credential ``check``, tests over a fake authorization server).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from string import Template

from tovplus.errors import TovPlusError
from tovplus.integrations.auth import AuthType

#: Integration keys: the registry's rule (lower snake_case, 2-64 characters).
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,63}")

#: ``(template, destination)``; destinations are formatted with :class:`ScaffoldNames` fields.
_FILES: tuple[tuple[str | None, str], ...] = (
    ("pyproject.toml.tmpl", "pyproject.toml"),
    ("README.md.tmpl", "README.md"),
    ("__init__.py.tmpl", "src/{module}/__init__.py"),
    ("adapter.py.tmpl", "src/{module}/adapter.py"),
    (None, "src/{module}/py.typed"),
    ("test_adapter.py.tmpl", "tests/test_{key}.py"),
)
#: The templates an OAuth2 adapter uses instead.
_OAUTH2_TEMPLATES = {
    "adapter.py.tmpl": "adapter_oauth2.py.tmpl",
    "test_adapter.py.tmpl": "test_adapter_oauth2.py.tmpl",
}
#: What the README says about how the adapter authenticates.
_AUTH_NOTES = {
    AuthType.API_KEY: "It authenticates with an API key the planner types into the connection form.",
    AuthType.OAUTH2: (
        'It authenticates with OAuth2: the planner presses "Connect" and allows access at the partner;\n'
        "TOV Plus runs the flow, keeps the tokens sealed and refreshes them. The operator registers the\n"
        "partner's OAuth client once: `tovplus oauth set-client ${key}`, or\n"
        """`TOVPLUS_OAUTH_CLIENTS='{"${key}": {"client_id": "...", "client_secret": "..."}}'`."""
    ),
}


class ScaffoldError(TovPlusError):
    code = "scaffold_error"


@dataclass(frozen=True, slots=True)
class ScaffoldNames:
    """Every name derived from the integration key."""

    key: str  # crumb_catering
    dist: str  # tovplus-crumb-catering (distribution and folder name)
    module: str  # tovplus_crumb_catering (import name)
    class_name: str  # CrumbCateringAdapter
    title: str  # Crumb catering


def names_for(key: str) -> ScaffoldNames:
    """Derive the package names from ``key``; :class:`ScaffoldError` when it is not a valid key."""
    if not KEY_PATTERN.fullmatch(key) or key.endswith("_") or "__" in key:
        raise ScaffoldError(
            f"{key!r} is not a valid integration key: use 2-64 lower-case letters, digits and single "
            "underscores, starting with a letter (e.g. crumb_catering)."
        )
    from tovplus.integrations.registry import builtin_adapters

    if key in {a.integration_key for a in builtin_adapters()}:
        raise ScaffoldError(f"{key!r} is the key of an adapter that ships with TOV Plus; choose another.")
    words = key.split("_")
    return ScaffoldNames(
        key=key,
        dist="tovplus-" + "-".join(words),
        module=f"tovplus_{key}",
        class_name="".join(w[:1].upper() + w[1:] for w in words) + "Adapter",
        title=" ".join(words).capitalize(),
    )


def render(key: str, auth: AuthType = AuthType.API_KEY) -> dict[str, str]:
    """The generated files, as ``{relative path: content}``, for an adapter authenticating by ``auth``."""
    names = names_for(key)
    auth = AuthType(auth)
    values = {
        "key": names.key,
        "dist": names.dist,
        "module": names.module,
        "class_name": names.class_name,
        "title": names.title,
        "new_options": " --auth oauth2" if auth is AuthType.OAUTH2 else "",
    }
    values["auth_note"] = Template(_AUTH_NOTES[auth]).substitute(values)
    templates = files("tovplus.scaffold").joinpath("templates")
    out: dict[str, str] = {}
    for template, destination in _FILES:
        if template is not None and auth is AuthType.OAUTH2:
            template = _OAUTH2_TEMPLATES.get(template, template)
        text = "" if template is None else templates.joinpath(template).read_text("utf-8")
        out[destination.format(**values)] = Template(text).substitute(values)
    return out


def create_package(key: str, parent: Path, auth: AuthType = AuthType.API_KEY) -> Path:
    """Write the package for ``key`` into ``parent/<dist>`` and return that folder.

    Refuses (with :class:`ScaffoldError`) to write into a folder that is not empty.
    """
    contents = render(key, auth)
    target = parent / names_for(key).dist
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} already exists and is not empty; choose another --dir.")
    try:
        for relative, text in contents.items():
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ScaffoldError(f"could not write {target}: {exc.strerror or exc}") from exc
    return target


__all__ = ["KEY_PATTERN", "ScaffoldError", "ScaffoldNames", "create_package", "names_for", "render"]
