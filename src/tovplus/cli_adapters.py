"""``tovplus adapters``: scaffold a new adapter package, list what is installed, check one."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tovplus.cli_support import fail
from tovplus.errors import TovPlusError
from tovplus.integrations.auth import AuthType

if TYPE_CHECKING:
    from tovplus.testing import FakePartner

adapters_app = typer.Typer(
    help="Adapters: generate a package, list the installed ones, run the conformance checks.",
    no_args_is_help=True,
)


def _parse_json(option: str, text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise fail(f"{option} is not valid JSON: {exc}") from None


def _plugin_sources() -> dict[str, str]:
    """Entry point name -> "distribution version (module:attr)" for installed plugins."""
    from tovplus.integrations.registry import ENTRY_POINT_GROUP

    sources = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        dist = f"{point.dist.name} {point.dist.version}" if point.dist is not None else "unknown package"
        sources[point.name] = f"{dist} ({point.value})"
    return sources


def _partner_factory(routes: Any) -> Callable[[], FakePartner]:
    """A factory of fresh scripted partners answering ``routes`` (the parsed ``--partner``)."""
    from tovplus.testing import FakePartner

    if not isinstance(routes, dict):
        raise fail("--partner must be a JSON object of routes")
    try:
        FakePartner(routes)
    except ValueError as exc:
        raise fail(f"--partner: {exc}") from None
    return lambda: FakePartner(routes)


@adapters_app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="The integration key, lower snake_case, e.g. crumb_catering.")],
    directory: Annotated[
        Path, typer.Option("--dir", help="Folder to create the package in (default: here).")
    ] = Path(),
    auth: Annotated[
        AuthType,
        typer.Option(
            "--auth",
            case_sensitive=False,
            help="How the adapter authenticates: api_key (secrets typed into the form) or oauth2 "
            "(the planner grants access at the partner; TOV Plus runs the flow and refreshes tokens).",
        ),
    ] = AuthType.API_KEY,
) -> None:
    """Generate an installable adapter package: module, entry point and tests."""
    from tovplus.scaffold import create_package, names_for

    try:
        target = create_package(name, directory, auth)
        names = names_for(name)
    except TovPlusError as exc:
        raise fail(exc.message) from None
    typer.echo(f"created {target}")
    typer.echo(f"  adapter     src/{names.module}/adapter.py ({names.class_name}, auth {auth.value})")
    typer.echo(f"  entry point tovplus.adapters: {names.key} = {names.module}.adapter:{names.class_name}")
    typer.echo(f"  tests       tests/test_{names.key}.py")
    typer.echo("next:")
    typer.echo(f"  cd {target}")
    typer.echo("  pip install -e '.[test]'   # in the environment TOV Plus runs in")
    typer.echo("  pytest")
    typer.echo(f"  tovplus adapters check {names.key}")
    if auth is AuthType.OAUTH2:
        typer.echo(
            f"  tovplus oauth set-client {names.key}   # the operator, once: the partner's OAuth client"
        )


@adapters_app.command("list")
def list_adapters(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """What the registry loaded (built in or from plugins), and the plugins it skipped and why."""
    from tovplus.integrations.registry import builtin_adapters, default_registry

    registry = default_registry()
    builtin = {a.integration_key for a in builtin_adapters()}
    sources = _plugin_sources()
    loaded = [
        {
            "integration_key": a.integration_key,
            "name": a.name,
            "mode": a.mode.value,
            "contract_version": a.contract_version,
            "source": "built in"
            if a.integration_key in builtin
            else sources.get(a.integration_key, "plugin"),
        }
        for a in registry
    ]
    skipped = [{"name": s.name, "target": s.target, "reason": s.reason} for s in registry.skipped]
    if as_json:
        typer.echo(json.dumps({"adapters": loaded, "skipped": skipped}))
        return
    width = max((len(str(a["integration_key"])) for a in loaded), default=0)
    typer.echo(f"{len(loaded)} adapter{'s' * (len(loaded) != 1)} loaded:")
    for a in loaded:
        typer.echo(
            f"  {a['integration_key']:<{width}}  {a['name']} [{a['mode']}, contract v{a['contract_version']}]"
            f"  {a['source']}"
        )
    if skipped:
        typer.echo(f"{len(skipped)} plugin{'s' * (len(skipped) != 1)} skipped:")
        for s in skipped:
            typer.echo(f"  {s['name']} ({s['target']}): {s['reason']}")
    else:
        typer.echo("no plugins skipped")


@adapters_app.command("check")
def check(
    name: Annotated[str, typer.Argument(help="The integration key of an installed adapter.")],
    config: Annotated[
        str | None, typer.Option(help="A valid sample config as JSON (default: derived from the fields).")
    ] = None,
    secrets: Annotated[
        str | None, typer.Option(help="Sample secret values as JSON (default: derived from the fields).")
    ] = None,
    callback: Annotated[
        str | None, typer.Option(help="A callback payload the adapter accepts, as JSON.")
    ] = None,
    partner: Annotated[
        str | None,
        typer.Option(
            help='A scripted partner a sync succeeds against, as JSON: {"GET /path": answer, ...}; an '
            "object or list answers 200 with that body, a number answers that status."
        ),
    ] = None,
    examples: Annotated[
        int, typer.Option(min=1, max=10_000, help="Generated inputs per property-based check.")
    ] = 60,
) -> None:
    """Run the conformance checks on one adapter; exit 1 if any fails."""
    from tovplus.integrations.registry import default_registry
    from tovplus.testing import check_adapter

    registry = default_registry()
    adapter = registry.find(name)
    if adapter is None:
        skipped = [s for s in registry.skipped if s.name == name]
        if skipped:
            typer.echo(f"adapter {name!r} was not loaded: {skipped[0].reason}")
            raise typer.Exit(1)
        known = ", ".join(a.integration_key for a in registry) or "none"
        raise fail(f"no adapter called {name!r} is installed (installed: {known})")
    sample_config = _parse_json("--config", config)
    sample_secrets = _parse_json("--secrets", secrets)
    for option, value in (("--config", sample_config), ("--secrets", sample_secrets)):
        if value is not None and not isinstance(value, dict):
            raise fail(f"{option} must be a JSON object")
    kwargs: dict[str, Any] = {}
    if callback is not None:
        kwargs["callback"] = _parse_json("--callback", callback)
    if partner is not None:
        kwargs["partner"] = _partner_factory(_parse_json("--partner", partner))
    report = check_adapter(adapter, config=sample_config, secrets=sample_secrets, examples=examples, **kwargs)
    typer.echo(report.format())
    if not report.ok:
        raise typer.Exit(1)
