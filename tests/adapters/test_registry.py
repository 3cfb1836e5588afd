"""The adapter registry: duplicate keys, declaration checks, and plugin discovery.

Plugins are found through the ``tovplus.adapters`` entry-point group. A broken plugin
is reported in ``registry.skipped`` and left out; it never stops the service. The last
test installs a real adapter package and sees it in a running server's catalog.
"""

from __future__ import annotations

import json
import logging
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes.test_cli import cli_env, run_cli, served
from tests.support.packaging import install_aside
from tovplus.integrations import (
    Adapter,
    CallbackContext,
    CallbackResult,
    Direction,
    Field,
    Mode,
    SyncContext,
    SyncResult,
)
from tovplus.integrations.contract import CONTRACT_VERSION
from tovplus.integrations.registry import (
    ENTRY_POINT_GROUP,
    AdapterRegistry,
    DuplicateAdapterError,
    InvalidAdapterError,
    declaration_problems,
    default_registry,
)


class SoundAdapter(Adapter):
    integration_key = "sound_adapter"
    name = "Sound"
    description = "A correctly declared adapter."
    category = "testing"
    direction = Direction.BIDIRECTIONAL
    mode = Mode.PULL
    action_keys = ("occasion.read", "events.read")
    config_fields = (Field("account", "Account", required=True),)
    secret_fields = (Field("token", "Token", required=True),)
    supports_background_sync = True
    supports_inbound_callbacks = True

    def sync(self, ctx: SyncContext) -> SyncResult:
        return SyncResult()

    def map_callback(self, payload: Any, ctx: CallbackContext) -> CallbackResult:
        return CallbackResult(records=[], summary="ok")


def variant(**attrs: Any) -> type[Adapter]:
    """A subclass of :class:`SoundAdapter` with some declarations replaced."""
    return type("Variant", (SoundAdapter,), attrs)


# --- the registry itself -------------------------------------------------------------------


@pytest.mark.no_db
def test_default_registry_holds_the_shipped_adapters_in_order():
    registry = default_registry(plugins=False)
    assert [a.integration_key for a in registry] == ["printing_partner", "venue_ops", "guest_messaging"]
    assert registry.skipped == []
    for adapter in registry:
        assert declaration_problems(adapter) == []


@pytest.mark.no_db
def test_registering_a_duplicate_key_is_refused_and_changes_nothing():
    registry = AdapterRegistry()
    first = registry.register(SoundAdapter)
    with pytest.raises(DuplicateAdapterError, match="sound_adapter"):
        registry.register(SoundAdapter)
    impostor = variant(name="Impostor")
    with pytest.raises(DuplicateAdapterError):
        registry.register(impostor())
    assert len(registry) == 1
    assert registry.get("sound_adapter") is first
    assert registry.get("sound_adapter").name == "Sound"


@pytest.mark.no_db
def test_register_refuses_what_is_not_an_adapter():
    registry = AdapterRegistry()
    with pytest.raises(InvalidAdapterError):
        registry.register(object)  # type: ignore[arg-type]
    with pytest.raises(InvalidAdapterError):
        registry.register("printing_partner")  # type: ignore[arg-type]
    assert len(registry) == 0


@pytest.mark.no_db
def test_register_refuses_unsound_declarations_naming_the_adapter_and_the_problem():
    registry = AdapterRegistry()
    with pytest.raises(InvalidAdapterError) as info:
        registry.register(variant(action_keys=("occasion.read", "guests.delete")))
    assert "sound_adapter" in info.value.message
    assert "guests.delete" in info.value.message
    assert "sound_adapter" not in registry


@pytest.mark.no_db
def test_get_of_an_unknown_key_is_not_found_and_find_is_none():
    from tovplus.errors import NotFound

    registry = default_registry(plugins=False)
    with pytest.raises(NotFound):
        registry.get("nope")
    assert registry.find("nope") is None
    assert "printing_partner" in registry
    assert "nope" not in registry


# --- declaration_problems ------------------------------------------------------------------


@pytest.mark.no_db
def test_a_sound_adapter_has_no_problems():
    assert declaration_problems(SoundAdapter()) == []


@pytest.mark.no_db
def test_unknown_action_key_is_named():
    problems = declaration_problems(variant(action_keys=("occasion.read", "tickets.write"))())
    assert problems == ["unknown action keys: tickets.write"]


@pytest.mark.no_db
def test_sync_flag_without_sync_is_a_problem():
    class NoSync(Adapter):
        integration_key = "no_sync"
        name = "No sync"
        description = "Claims background sync but has no sync()."
        category = "testing"
        direction = Direction.INBOUND
        mode = Mode.PUSH
        supports_background_sync = True

    assert declaration_problems(NoSync()) == ["supports_background_sync is set but sync() is not implemented"]


@pytest.mark.no_db
def test_callback_flag_without_map_callback_is_a_problem():
    class NoCallback(Adapter):
        integration_key = "no_callback"
        name = "No callback"
        description = "Claims callbacks but has no map_callback()."
        category = "testing"
        direction = Direction.INBOUND
        mode = Mode.CALLBACK
        supports_inbound_callbacks = True

    assert declaration_problems(NoCallback()) == [
        "supports_inbound_callbacks is set but map_callback() is not implemented"
    ]


@pytest.mark.no_db
@pytest.mark.parametrize("version", [0, CONTRACT_VERSION + 1, "1", None, True])
def test_wrong_contract_version_gives_one_clear_message(version: object):
    problems = declaration_problems(variant(contract_version=version)())
    assert len(problems) == 1
    message = problems[0]
    assert "contract version" in message
    assert repr(version) in message
    assert f"supports {CONTRACT_VERSION}" in message


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"integration_key": ""}, "integration_key must be a non-empty string"),
        ({"integration_key": "Bad-Key"}, "must be lower snake_case"),
        ({"integration_key": "x"}, "must be lower snake_case"),
        ({"name": ""}, "name must be a non-empty string"),
        ({"description": None}, "description must be a non-empty string"),
        ({"category": 7}, "category must be a non-empty string"),
        ({"direction": "inbound"}, "direction must be a Direction"),
        ({"mode": "pull"}, "mode must be a Mode"),
        ({"supports_background_sync": False}, "mode 'pull' needs supports_background_sync"),
        ({"secret_fields": (Field("account", "Again"),)}, "field keys declared twice: account"),
        ({"config_fields": ("account",)}, "config_fields must be a tuple of Field"),
        ({"secret_fields": [Field("token", "Token")]}, "secret_fields must be a tuple of Field"),
        ({"action_keys": "occasion.read"}, "action_keys must be a tuple of strings"),
        ({"action_keys": ("occasion.read", 3)}, "action_keys must be a tuple of strings"),
        ({"supports_background_sync": "yes"}, "supports_background_sync must be True or False"),
        ({"capabilities": ("a", None)}, "capabilities must be a tuple of strings"),
    ],
)
@pytest.mark.no_db
def test_each_bad_declaration_is_reported(attrs: dict[str, Any], expected: str):
    problems = declaration_problems(variant(**attrs)())
    assert any(expected in p for p in problems), problems


@pytest.mark.no_db
def test_declaration_problems_never_raises_on_a_junk_object():
    class Junk(Adapter):
        pass  # nothing declared at all

    problems = declaration_problems(Junk())
    assert "integration_key must be a non-empty string" in problems
    assert "direction must be a Direction" in problems


# --- plugins through entry points ------------------------------------------------------------

GOOD_PLUGIN = """
from tovplus.integrations import Adapter, Direction, Mode

class PluginAdapter(Adapter):
    integration_key = "{key}"
    name = "Plugin"
    description = "Installed through an entry point."
    category = "testing"
    direction = Direction.OUTBOUND
    mode = Mode.MANUAL
    action_keys = ("occasion.read",)
"""


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Write a module with the given source onto ``sys.path``; returns its (unique) name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    written: list[str] = []

    def write(source: str) -> str:
        name = f"tovplus_test_plugin_{uuid.uuid4().hex[:10]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(name)
        return name

    yield write
    for name in written:
        sys.modules.pop(name, None)


def entry_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


@pytest.mark.no_db
def test_broken_plugins_are_skipped_and_reported_never_fatal(
    plugin_module: Callable[[str], str], caplog: pytest.LogCaptureFixture
):
    good = plugin_module(GOOD_PLUGIN.format(key="good_plugin"))
    import_error = plugin_module("import not_a_module_that_exists_anywhere\n")
    raises = plugin_module("raise RuntimeError('plugin exploded at import')\n")
    old_version = plugin_module(
        GOOD_PLUGIN.format(key="old_plugin") + "\nPluginAdapter.contract_version = 99\n"
    )
    duplicate = plugin_module(GOOD_PLUGIN.format(key="printing_partner"))
    not_adapter = plugin_module("class NotAnAdapter:\n    pass\n")
    bad_init = plugin_module(
        GOOD_PLUGIN.format(key="bad_init")
        + "\n    def __init__(self):\n        raise ValueError('needs arguments')\n"
    )
    points = [
        entry_point("a_good", f"{good}:PluginAdapter"),
        entry_point("b_import_error", f"{import_error}:Anything"),
        entry_point("c_raises", f"{raises}:Anything"),
        entry_point("d_old_version", f"{old_version}:PluginAdapter"),
        entry_point("e_duplicate", f"{duplicate}:PluginAdapter"),
        entry_point("f_missing_attribute", f"{good}:NoSuchClass"),
        entry_point("g_not_an_adapter", f"{not_adapter}:NotAnAdapter"),
        entry_point("h_bad_init", f"{bad_init}:PluginAdapter"),
        entry_point("i_no_such_module", "tovplus_no_such_module_at_all:X"),
    ]
    registry = default_registry(plugins=False)
    with caplog.at_level(logging.WARNING, logger="tovplus.integrations.registry"):
        registry.load_entry_points(points)

    assert [a.integration_key for a in registry] == [
        "printing_partner",
        "venue_ops",
        "guest_messaging",
        "good_plugin",
    ]
    # the shipped adapter kept its key; the duplicate plugin did not replace it
    assert type(registry.get("printing_partner")).__module__.startswith("tovplus.integrations.adapters")
    skipped = {s.name: s for s in registry.skipped}
    assert sorted(skipped) == [p.name for p in points[1:]]
    assert "ModuleNotFoundError" in skipped["b_import_error"].reason
    assert "plugin exploded at import" in skipped["c_raises"].reason
    assert "contract version 99" in skipped["d_old_version"].reason
    assert "already registered" in skipped["e_duplicate"].reason
    assert "NoSuchClass" in skipped["f_missing_attribute"].reason
    assert "is not a tovplus Adapter" in skipped["g_not_an_adapter"].reason
    assert "needs arguments" in skipped["h_bad_init"].reason
    assert skipped["e_duplicate"].target == f"{duplicate}:PluginAdapter"
    for name in skipped:
        assert any(name in record.getMessage() for record in caplog.records), name


@pytest.mark.no_db
def test_two_plugins_with_one_key_keep_the_first_by_entry_point_name(plugin_module: Callable[[str], str]):
    first = plugin_module(GOOD_PLUGIN.format(key="shared_key"))
    second = plugin_module(GOOD_PLUGIN.format(key="shared_key"))
    registry = AdapterRegistry()
    registry.load_entry_points(
        [entry_point("z_second", f"{second}:PluginAdapter"), entry_point("a_first", f"{first}:PluginAdapter")]
    )
    assert type(registry.get("shared_key")).__module__ == first
    assert [s.name for s in registry.skipped] == ["z_second"]


@pytest.mark.no_db
def test_an_adapter_instance_is_accepted_from_an_entry_point(plugin_module: Callable[[str], str]):
    module = plugin_module(GOOD_PLUGIN.format(key="instance_plugin") + "\nADAPTER = PluginAdapter()\n")
    registry = AdapterRegistry()
    registry.load_entry_points([entry_point("inst", f"{module}:ADAPTER")])
    assert "instance_plugin" in registry
    assert registry.skipped == []


# --- a real package, installed and served ------------------------------------------------------

PACKAGE_PYPROJECT = """
[build-system]
requires = ["setuptools>=70.1"]
build-backend = "setuptools.build_meta"

[project]
name = "tovplus-test-stationery"
version = "0.0.1"

[project.entry-points."tovplus.adapters"]
stationery = "tovplus_test_stationery:StationeryAdapter"
broken = "tovplus_test_stationery.missing:Nothing"

[tool.setuptools]
packages = ["tovplus_test_stationery"]
"""

PACKAGE_MODULE = """
from tovplus.integrations import Adapter, Direction, Field, FieldType, Mode


class StationeryAdapter(Adapter):
    integration_key = "test_stationery"
    name = "Test stationery"
    description = "A plugin installed from a package for the test suite."
    category = "printing"
    direction = Direction.OUTBOUND
    mode = Mode.MANUAL
    action_keys = ("occasion.read", "guests.read")
    config_fields = (Field("shop_url", "Shop URL", FieldType.URL, required=True),)
    secret_fields = (Field("shop_token", "Shop token", required=True),)
"""


@pytest.mark.slow  # uses the backend's database: runs on SQLite and on PostgreSQL
def test_an_installed_plugin_package_appears_in_the_served_catalog(database_url: str, tmp_path: Path):
    package = tmp_path / "package"
    (package / "tovplus_test_stationery").mkdir(parents=True)
    (package / "pyproject.toml").write_text(PACKAGE_PYPROJECT)
    (package / "tovplus_test_stationery" / "__init__.py").write_text(PACKAGE_MODULE)
    target = tmp_path / "site"
    install_aside(package, target)
    assert list(target.glob("tovplus_test_stationery-*.dist-info"))

    env = cli_env(tmp_path / "data", database_url, PYTHONPATH=str(target))
    created = run_cli(
        "users", "create", "--email", "plugin@example.com", "--role", "planner", "--json", env=env
    )
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)["token"]  # stdout stays pure JSON despite the skipped plugin
    assert "skipped adapter plugin broken" in created.stderr

    with served(env) as base:
        r = httpx.get(f"{base}/v1/integrations/catalog", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    adapters = {a["integration_key"]: a for a in r.json()["adapters"]}
    assert set(adapters) == {"printing_partner", "venue_ops", "guest_messaging", "test_stationery"}
    plugin = adapters["test_stationery"]
    assert plugin["action_keys"] == ["occasion.read", "guests.read"]
    assert [(f["key"], f["type"], f["required"]) for f in plugin["config_fields"]] == [
        ("shop_url", "url", True)
    ]
    assert [f["key"] for f in plugin["secret_fields"]] == ["shop_token"]


@pytest.mark.no_db
def test_the_plugin_package_is_not_visible_to_this_process():
    """The installed test package went to a temporary target, never into the venv."""
    assert "test_stationery" not in default_registry()
