"""The import graph keeps the layers of DESIGN.md §2: no file imports itself back through other
files (import-linter checks the layers between packages in `make lint`, not cycles between files),
and every top-level package of the project is under .importlinter's contracts."""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
NOT_CODE = {"tests", "var", "static", "templates", "docs"}


def _packages() -> list[str]:
    return sorted(
        p.name
        for p in ROOT.iterdir()
        if (p / "__init__.py").is_file() and p.name not in NOT_CODE and not p.name.startswith(".")
    )


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_file_imports_itself_back_through_others() -> None:
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph(*_packages(), include_external_packages=False, cache_dir=None)
    assert _cycles(graph) == []


def test_every_package_is_under_the_import_contracts() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    listed = set(config["importlinter"]["root_packages"].split())
    assert set(_packages()) <= listed, "add the new package to .importlinter's root_packages"
