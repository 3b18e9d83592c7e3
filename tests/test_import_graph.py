"""The package's import graph, read with ``ast`` from every ``.py`` under ``aigfd_lite/`` (imports inside functions
included): no import cycle between modules or between sub-packages, and no private name taken across sub-packages.

``python tests/test_import_graph.py`` prints the counts (modules, lines, cycles, private names crossing sub-packages,
imports inside functions) without running the tests.
"""
from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = "aigfd_lite"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE  # also run as a script, without conftest


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package by dotted name (a package's ``__init__.py`` under the package's name)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def unit_of(module: str) -> str:
    """The sub-package a module belongs to (a module directly in the package is its own unit)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_package(module: str, files: dict[str, Path]) -> bool:
    return files[module].name == "__init__.py"


class _Imports(ast.NodeVisitor):
    """Collects (target module, names, inside a function?) for one module, and attribute reads of private names on
    names bound to package modules."""

    def __init__(self, module: str, files: dict[str, Path]):
        self.module, self.files = module, files
        self.depth = 0
        self.edges: list[tuple[str, int, bool]] = []          # (target, line, inside a function)
        self.private: list[tuple[str, str, int]] = []         # (target module, private name, line)
        self.bound: dict[str, str] = {}                       # local name -> package module it names

    def _function(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def _base(self, node: ast.ImportFrom) -> str | None:
        if node.level == 0:
            return node.module
        here = self.module.split(".")
        if not _is_package(self.module, self.files):
            here = here[:-1]
        here = here[:len(here) - (node.level - 1)]
        return ".".join(here + ([node.module] if node.module else []))

    def _edge(self, target: str, line: int):
        self.edges.append((target, line, self.depth > 0))

    def visit_Import(self, node: ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == PACKAGE and alias.name in self.files:
                self._edge(alias.name, node.lineno)
                if alias.asname:
                    self.bound[alias.asname] = alias.name

    def visit_ImportFrom(self, node: ast.ImportFrom):
        base = self._base(node)
        if not base or base.split(".")[0] != PACKAGE:
            return
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if sub in self.files:                              # a module: ``from . import fdf_scan``
                self._edge(sub, node.lineno)
                self.bound[alias.asname or alias.name] = sub
                continue
            if base in self.files:
                self._edge(base, node.lineno)
                if _is_private(alias.name):
                    self.private.append((base, alias.name, node.lineno))

    def visit_Attribute(self, node: ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id in self.bound and _is_private(node.attr):
            target = self.bound[node.value.id]
            if not hasattr(self, "_seen"):
                self._seen = set()
            if (target, node.attr) not in self._seen:
                self._seen.add((target, node.attr))
                self.private.append((target, node.attr, node.lineno))
        self.generic_visit(node)


def read_graph(root: Path = ROOT):
    """(files, module edges with lines and depth, private-name reads) of the package under ``root``."""
    files = module_files(root)
    edges, private = {}, {}
    for module, path in files.items():
        visitor = _Imports(module, files)
        visitor.visit(ast.parse(path.read_text(), str(path)))
        edges[module], private[module] = visitor.edges, visitor.private
    return files, edges, private


def _with_parents(source: str, target: str) -> list[str]:
    """Importing ``a.b.c`` runs ``a.b``'s ``__init__`` first, unless the importer is inside ``a.b`` already."""
    parts = target.split(".")
    out = [target]
    for n in range(2, len(parts)):
        parent = ".".join(parts[:n])
        if not (source == parent or source.startswith(parent + ".")):
            out.append(parent)
    return out


def module_graph(files, edges) -> dict[str, set[str]]:
    graph = {m: set() for m in files}
    for source, found in edges.items():
        for target, _, _ in found:
            for node in _with_parents(source, target):
                if node != source and node in files:
                    graph[source].add(node)
    return graph


def unit_graph(graph) -> dict[str, set[str]]:
    units = defaultdict(set)
    for source, targets in graph.items():
        units[unit_of(source)]
        for target in targets:
            if unit_of(target) != unit_of(source):
                units[unit_of(source)].add(unit_of(target))
    return dict(units)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted; the list sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []
    sys.setrecursionlimit(10_000)

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def private_crossings(files, private) -> list[str]:
    """``importer -> module._name`` for each private name read from another sub-package."""
    return sorted(f"{source} -> {target}.{name}" for source, found in private.items()
                  for target, name, _ in found if unit_of(source) != unit_of(target))


def inner_imports(edges) -> list[str]:
    """Package imports written inside functions."""
    return sorted(f"{source}:{line} -> {target}" for source, found in edges.items()
                  for target, line, inside in found if inside)


def summary(root: Path = ROOT) -> dict:
    files, edges, private = read_graph(root)
    graph = module_graph(files, edges)
    top = [m for m in files if m.count(".") == 1 and not _is_package(m, files)]
    return {
        "modules": len(files),
        "modules directly in the package": len(top),
        "sub-packages": sorted(m for m in files if m.count(".") == 1 and _is_package(m, files)),
        "lines": sum(len(p.read_text().splitlines()) for p in files.values()),
        "module cycles": cycles(graph),
        "sub-package cycles": cycles(unit_graph(graph)),
        "private names across sub-packages": private_crossings(files, private),
        "private names across modules": sorted(f"{s} -> {t}.{n}" for s, found in private.items()
                                               for t, n, _ in found if s != t),
        "package imports inside functions": inner_imports(edges),
    }


def test_no_module_cycle():
    files, edges, _ = read_graph()
    assert cycles(module_graph(files, edges)) == []


def test_no_sub_package_cycle():
    files, edges, _ = read_graph()
    assert cycles(unit_graph(module_graph(files, edges))) == []


def test_no_private_name_across_sub_packages():
    files, _, private = read_graph()
    assert private_crossings(files, private) == []


def test_no_public_name_shadows_a_module_of_its_sub_package():
    """``from aigfd_lite.train import measurements`` must give the module: no sub-package exports a name that is
    also one of its modules' names (the exported object would hide the module)."""
    files = module_files()
    for package in (m for m in files if files[m].name == "__init__.py"):
        tree = ast.parse(files[package].read_text())
        exported = {a.asname or a.name for node in tree.body if isinstance(node, ast.ImportFrom) and node.module
                    for a in node.names}
        assert not {f"{package}.{name}" for name in exported} & set(files), package


def test_walker_sees_imports_inside_functions(tmp_path):
    package = tmp_path / PACKAGE
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("from .core import thing\n")
    (package / "low" / "core.py").write_text("def thing():\n    from ..high import _helper\n")
    (package / "high.py").write_text("from .low import thing\n_helper = 1\n")
    files, edges, private = read_graph(package)
    graph = module_graph(files, edges)
    assert cycles(graph) == [[f"{PACKAGE}.high", f"{PACKAGE}.low", f"{PACKAGE}.low.core"]]
    assert cycles(unit_graph(graph)) == [[f"{PACKAGE}.high", f"{PACKAGE}.low"]]
    assert private_crossings(files, private) == [f"{PACKAGE}.low.core -> {PACKAGE}.high._helper"]
    assert inner_imports(edges) == [f"{PACKAGE}.low.core:2 -> {PACKAGE}.high"]


if __name__ == "__main__":
    report = summary()
    for key, value in report.items():
        if isinstance(value, list) and key != "sub-packages":
            print(f"{key}: {len(value)}")
            for item in value if "cycles" in key or "private" in key else []:
                print(f"    {item}")
        else:
            print(f"{key}: {value}")
