"""The package keeps its layout: no import cycle between modules (function-level imports included), one job per
module (no module over :data:`MAX_LINES` lines), and every subpackage importable on its own."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("activeuf_env", "agents", "baselines")
MAX_LINES = 550
"""About 500 lines a module, with room for a docstring that grows; past this, split the module."""


def module_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files[".".join(parts)] = path
    return files


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """Every module of ours that ``path`` imports, anywhere in the file (module or function level)."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {target for target in targets if target in known and target != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_modules() -> None:
    files = module_files()
    # A package's __init__ only re-exports; an edge into it stands for the submodules it names.
    graph = {name: imported_modules(path, name, set(files)) for name, path in files.items()}
    leaves = {name: {t for t in targets if t not in PACKAGES} for name, targets in graph.items()}
    assert find_cycle(leaves) is None


@pytest.mark.parametrize("name", sorted(module_files()))
def test_module_has_one_job(name: str) -> None:
    lines = module_files()[name].read_text().count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines (at most {MAX_LINES}): split it along its jobs"


@pytest.mark.parametrize(
    "name", sorted(n for n, p in module_files().items() if p.name == "__init__.py" and n.count(".") == 1)
)
def test_subpackage_imports_alone_in_a_fresh_process(name: str) -> None:
    done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert importlib.import_module(name).__all__
