"""The package's layout holds: no import cycles, and each stage imports only the stages below it.

Every import counts, also those made inside functions or only for type checking: a cycle hidden in a function is
still a cycle a reader has to untangle.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "booktune"
# Lowest first. A module may import from its own layer and the layers before it, never from a later one.
LAYERS = [
    ("version", "errors", "console", "fsutil"),
    ("config", "devices", "outputs"),
    ("model", "runfolder", "checkup"),
    ("ingest",),
    ("template",),
    ("inference",),
    ("dataset",),  # the model question writer generates with inference
    ("training",),
    ("evaluation",),
    ("report", "notebooks"),
    ("exporting",),
    ("api",),
    ("cli", "__main__", ""),  # "": the package's own __init__ (the lazy API)
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py")}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The booktune modules `path` imports anywhere in its body (`from pkg import mod` counts as pkg.mod)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "booktune"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            if base.split(".")[0] != "booktune":
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return found - {name}


@functools.cache  # parsed once for the whole file, not once per parametrized module
def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a cycle to untangle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_stage_has_a_layer():
    assert {stage(m) for m in modules()} <= set(LAYER), "add the new stage to LAYERS"


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_run_downward(module):
    edges = graph()[module]
    upward = sorted(t for t in edges if LAYER[stage(t)] > LAYER[stage(module)])
    assert upward == [], f"{module} imports from later stages: {upward}"
