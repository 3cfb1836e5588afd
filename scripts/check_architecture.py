"""Check the two architecture rules import-linter's contracts cannot say (run by ``make lint``).

1. Service domains talk only through each other's package ``__init__`` (the public facade): a
   module outside ``tovplus/services/<domain>/`` may import ``tovplus.services.<domain>`` but
   never ``tovplus.services.<domain>.<module>``. That holds for every importer: other domains,
   ``api``, ``web``, ``worker``, ``cli``.
2. No import cycles between modules anywhere in ``tovplus``.

Imports inside functions and under ``TYPE_CHECKING`` count, as they do for the contracts in
``pyproject.toml``: an import deferred to dodge a cycle is still a cycle. The layer contracts
themselves run as ``lint-imports``; docs/architecture.md describes both.

Usage: ``.venv/bin/python scripts/check_architecture.py`` (exits 1 and lists each breach).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import grimp

SRC = Path(__file__).resolve().parent.parent / "src"

PACKAGE = "tovplus"
SERVICES = f"{PACKAGE}.services"


def _lines(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    details = graph.get_import_details(importer=importer, imported=imported)
    numbers = sorted({d["line_number"] for d in details})
    return ", ".join(f"l.{n}" for n in numbers) or "l.?"


def _domain_of(module: str) -> str | None:
    """``tovplus.services.sync`` for ``tovplus.services.sync.execute`` (and for the package itself)."""
    parts = module.split(".")
    if len(parts) >= 3 and ".".join(parts[:2]) == SERVICES:
        return ".".join(parts[:3])
    return None


def facade_breaches(graph: grimp.ImportGraph) -> list[str]:
    """Imports of a domain's inner module from outside that domain's package."""
    breaches = []
    for imported in sorted(graph.modules):
        domain = _domain_of(imported)
        if domain is None or imported == domain:
            continue
        for importer in sorted(graph.find_modules_that_directly_import(imported)):
            if _domain_of(importer) != domain:
                lines = _lines(graph, importer, imported)
                breaches.append(f"{importer} -> {imported} ({lines}): import {domain} instead")
    return breaches


def cycles(graph: grimp.ImportGraph) -> list[str]:
    """One shortest cycle for each group of modules that import each other (directly or not)."""
    found = []
    seen: set[str] = set()
    for module in sorted(graph.modules):
        if module in seen:
            continue
        group = graph.find_upstream_modules(module) & graph.find_downstream_modules(module)
        if not group:
            continue
        group.add(module)
        seen |= group
        found.append(_describe_cycle(graph, module, group))
    return found


def _describe_cycle(graph: grimp.ImportGraph, start: str, group: set[str]) -> str:
    """``a -> b (l.3) -> a (l.9)``: the shortest way from ``start`` round to itself."""
    best: tuple[str, ...] | None = None
    for first in sorted(graph.find_modules_directly_imported_by(start) & group):
        back = graph.find_shortest_chain(importer=first, imported=start)
        if back is not None and (best is None or len(back) + 1 < len(best)):
            best = (start, *back)
    assert best is not None  # every member of the group reaches start again
    steps = [best[0]]
    steps += [f"{b} ({_lines(graph, a, b)})" for a, b in itertools.pairwise(best)]
    return f"{len(group)} modules import each other: " + " -> ".join(steps)


def main() -> int:
    sys.path.insert(0, str(SRC))  # this checkout's code, whatever the venv has installed
    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    problems = [("a domain's inner module imported from outside its package", facade_breaches(graph))]
    problems.append(("import cycle", cycles(graph)))
    failed = False
    for title, items in problems:
        for item in items:
            print(f"{title}: {item}")
            failed = True
    if failed:
        print("docs/architecture.md: domains talk through their package __init__; imports point downwards.")
        return 1
    print(f"architecture: {len(graph.modules)} modules, no cycles, every domain reached through its facade")
    return 0


if __name__ == "__main__":
    sys.exit(main())
