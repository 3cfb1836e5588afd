"""docs/writing-an-adapter.md cannot rot: every code block in it is exercised here.

* ``toml``/``python`` blocks starting with ``# file: <path>`` are assembled, in order, into the
  package the guide builds; it is installed into a temporary folder (never the venv), linted,
  and its tests are run with plain pytest;
* other ``python`` blocks are run with that package importable; a ``text`` block right after
  one is what it must print;
* ``console`` blocks are commands this test knows how to run (with the package on the path);
  a ``text`` block right after one is what they must print;
* any other block, or a command this test does not know, fails the test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import tovplus
from tests.support.packaging import install_aside

pytestmark = pytest.mark.no_db

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "writing-an-adapter.md"
PYTHON = Path(sys.executable)
TOVPLUS = PYTHON.with_name("tovplus")
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
FILE_HEADER = re.compile(r"# file: (\S+)\n")
PACKAGE = "tovplus_crumb_catering"
KEY = "crumb_catering"

#: The console commands the guide may show, and what this test runs for them.
KNOWN_COMMANDS = {
    "tovplus adapters new crumb_catering",
    "pip install -e '.[test]'",
    "pytest",
    "tovplus adapters list",
    "tovplus adapters check crumb_catering",
    "tovplus adapters check crumb_tastings",
}


@dataclass
class Step:
    """A snippet or a console block, and the output the guide says it prints."""

    kind: str  # "python" | "console"
    code: str
    line: int
    expected: list[str] = field(default_factory=list)


@dataclass
class Guide:
    files: dict[str, str]
    steps: list[Step]
    problems: list[str]


def read_guide() -> Guide:
    text = GUIDE.read_text("utf-8")
    files: dict[str, str] = {}
    steps: list[Step] = []
    problems: list[str] = []
    previous: Step | None = None
    for match in FENCE.finditer(text):
        lang, body = match.group(1), match.group(2)
        line = text.count("\n", 0, match.start()) + 1
        header = FILE_HEADER.match(body)
        if lang in ("python", "toml") and header:
            files[header.group(1)] = files.get(header.group(1), "") + body[header.end() :]
            previous = None
        elif lang == "python" or lang == "console":
            previous = Step(lang, body, line)
            steps.append(previous)
        elif lang == "text" and previous is not None and not previous.expected:
            previous.expected = [x.rstrip() for x in body.splitlines() if x.strip()]
            previous = None
        else:
            problems.append(f"line {line}: a ```{lang or '(none)'} block that no test exercises")
            previous = None
    return Guide(files, steps, problems)


def commands(step: Step) -> list[str]:
    lines = [x for x in step.code.splitlines() if x.strip()]
    assert all(x.startswith("$ ") for x in lines), f"line {step.line}: console lines start with '$ '"
    return [x[2:].strip() for x in lines]


@pytest.fixture(scope="module")
def guide() -> Guide:
    return read_guide()


@pytest.fixture(scope="module")
def built(guide: Guide, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The package assembled from the guide, installed into a temporary site folder."""
    root = tmp_path_factory.mktemp("guide")
    package = root / "tovplus-crumb-catering"
    for relative, content in guide.files.items():
        path = package / relative
        assert package in path.resolve().parents, relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    site = root / "site"
    install_aside(package, site)
    return package, site


def env_for(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOVPLUS_", "PYTEST_"))}
    # the tovplus under test (a worktree's src/, not only the one the venv was installed from)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(Path(tovplus.__file__).resolve().parents[1])])
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # plain pytest, as an adapter author has it
    return env


def assert_printed(step: Step, output: str) -> None:
    printed = {x.rstrip() for x in output.splitlines()}
    missing = [x for x in step.expected if x not in printed]
    assert not missing, f"guide line {step.line}: expected output not printed: {missing}\n--- got:\n{output}"


def test_every_block_is_exercised_and_builds_the_whole_package(guide: Guide) -> None:
    assert guide.problems == []
    assert sorted(guide.files) == [
        "pyproject.toml",
        f"src/{PACKAGE}/__init__.py",
        f"src/{PACKAGE}/adapter.py",
        f"src/{PACKAGE}/tastings.py",
        "tests/test_crumb_catering.py",
        "tests/test_crumb_tastings.py",
    ]
    assert f'{KEY} = "{PACKAGE}.adapter:CrumbCateringAdapter"' in guide.files["pyproject.toml"]
    # section 12 builds an OAuth2 adapter in the same package
    assert f'crumb_tastings = "{PACKAGE}.tastings:CrumbTastingsAdapter"' in guide.files["pyproject.toml"]
    assert "auth = OAuth2Auth(" in guide.files[f"src/{PACKAGE}/tastings.py"]
    unknown = [c for s in guide.steps if s.kind == "console" for c in commands(s) if c not in KNOWN_COMMANDS]
    assert unknown == [], "add these commands to KNOWN_COMMANDS and run them in this test"
    assert [s.kind for s in guide.steps].count("python") >= 4


def test_the_assembled_package_lints_clean(built: tuple[Path, Path]) -> None:
    package, _ = built
    lint = subprocess.run(
        [str(PYTHON.with_name("ruff")), "check", "--no-cache", "--line-length", "120", "."],
        cwd=package,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


RUN_SNIPPETS = """
import contextlib, io, json, sys, traceback
results = []
for code in json.load(sys.stdin):
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "<guide snippet>", "exec"), {"__name__": "__guide__"})
    except BaseException:
        results.append({"ok": False, "output": out.getvalue() + traceback.format_exc()})
    else:
        results.append({"ok": True, "output": out.getvalue()})
print(json.dumps(results))
"""


def test_the_python_snippets_print_what_the_guide_says(guide: Guide, built: tuple[Path, Path]) -> None:
    _, site = built
    snippets = [s for s in guide.steps if s.kind == "python"]
    run = subprocess.run(
        [str(PYTHON), "-c", RUN_SNIPPETS],
        input=json.dumps([s.code for s in snippets]),
        env=env_for(site),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    for step, result in zip(snippets, results, strict=True):
        assert result["ok"], f"guide line {step.line}:\n{result['output']}"
        assert step.expected, f"guide line {step.line}: follow the snippet with the ```text it prints"
        assert_printed(step, result["output"])


def test_the_console_commands_do_what_the_guide_says(
    guide: Guide, built: tuple[Path, Path], tmp_path: Path
) -> None:
    package, site = built
    env = env_for(site)
    ran: list[str] = []
    for step in (s for s in guide.steps if s.kind == "console"):
        output = ""
        for command in commands(step):
            ran.append(command)
            if command == "pip install -e '.[test]'":
                # Done by the fixture, into a temporary target so the project's venv stays as it is.
                assert list(site.glob("tovplus_crumb_catering-0.1.0.dist-info")), "not installed"
                continue
            if command == "tovplus adapters new crumb_catering":
                argv, cwd = [str(TOVPLUS), "adapters", "new", KEY], tmp_path
            elif command == "pytest":
                argv, cwd = [str(PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider"], package
            else:
                argv, cwd = [str(TOVPLUS), *command.split()[1:]], package
            result = subprocess.run(
                argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
            )
            assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
            output += result.stdout
            if command == "pytest":
                assert " passed" in result.stdout
                assert "skipped" not in result.stdout
                assert "failed" not in result.stdout
            if command.startswith("tovplus adapters new"):
                assert (tmp_path / "tovplus-crumb-catering" / "src" / PACKAGE / "adapter.py").is_file()
        assert_printed(step, output)
    assert sorted(set(ran)) == sorted(KNOWN_COMMANDS)


def test_the_guides_tests_can_fail(guide: Guide, tmp_path: Path) -> None:
    """Break the guide's adapter the way the guide warns against; its own tests catch it."""
    package = tmp_path / "broken"
    for relative, content in guide.files.items():
        if relative.endswith("adapter.py"):
            # Quote the partner's answer in the error message: it leaks the key the partner echoes.
            careful = 'f"Crumb answered HTTP {response.status_code}."'
            assert content.count(careful) == 1
            content = content.replace(careful, 'f"Crumb answered {response.status_code}: {response.text}"')
        path = package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    site = tmp_path / "site"
    subprocess.run(
        [
            *(str(PYTHON), "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation", "--no-deps"),
            *("--disable-pip-version-check", "--target", str(site), str(package)),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    result = subprocess.run(
        [str(PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "partner_errors"],
        cwd=package,
        env=env_for(site),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert "its error message contains secret 'api_key' (when the partner answers HTTP 500" in result.stdout
