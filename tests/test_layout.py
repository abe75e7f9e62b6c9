"""The house rules of the package layout: imports point down the layers, no import circle (deferred
imports included), the core imports neither Lightning nor matplotlib, and files and functions
stay small enough to read."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "neuroview"

#: low to high; a module may import its own layer or lower ones
LAYERS = ["_io", "_version", "_batch", "core", "attribution", "data", "zoo", "training", "viz", "cli", "__main__", "__init__"]


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> set[str]:
    """Every neuroview module ``path`` imports, at top level or inside a function."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "neuroview"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.split(".")[0] == "neuroview":
                target = node.module
            else:
                continue
            # `from . import x` / `from .pkg import mod` name modules: then the import is of those
            mods = [f"{target}.{a.name}" for a in node.names if _is_module(f"{target}.{a.name}")]
            out |= set(mods)
            if len(mods) < len(node.names):
                out.add(target)
    out.discard(name)
    return out


def _is_module(dotted: str) -> bool:
    path = PKG.parent / Path(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


MODULES = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}
GRAPH = {m: {t for t in _imports(p) if t in MODULES} for m, p in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module):
    mine = LAYERS.index(_layer(module))
    up = [t for t in GRAPH[module] if LAYERS.index(_layer(t)) > mine and not _is_parent_package(t, module)]
    assert not up, f"{module} imports higher layers: {up}"


def _is_parent_package(target: str, module: str) -> bool:
    # `from .. import x` resolves through the parent package's __init__ only to reach a sibling
    return module.startswith(target + ".") and target != "neuroview"


def test_no_import_circle():
    seen, stack, cycles = set(), [], []

    def visit(m):
        if m in stack:
            cycles.append(stack[stack.index(m):] + [m])
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for t in GRAPH[m]:
            if not _is_parent_package(t, m):
                visit(t)
        stack.pop()

    for m in GRAPH:
        visit(m)
    assert not cycles, cycles


def test_core_alone_loads_no_lightning_matplotlib_or_higher_layer():
    code = ("import sys, neuroview.core.cnn, neuroview.core.rnn, neuroview.core.wrap; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('pytorch_lightning', 'lightning', 'matplotlib') "
            "or m.startswith(('neuroview.training', 'neuroview.viz', 'neuroview.zoo', 'neuroview.data'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    # `import neuroview.core` runs neuroview/__init__.py, which re-exports the zoo; check the core's own imports too
    core = [m for m in MODULES if _layer(m) == "core"]
    for m in core:
        assert not {t for t in GRAPH[m] if _layer(t) not in ("core", "_io", "_version")}, m
    for m in core:
        src = MODULES[m].read_text()
        assert "lightning" not in src.split('"""', 2)[-1] and "matplotlib" not in src.split('"""', 2)[-1], m
    assert out.startswith("[")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_files_and_functions_stay_small(module):
    path = MODULES[module]
    lines = path.read_text().count("\n")
    assert lines <= 400, f"{path.name}: {lines} lines"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            assert n <= 80, f"{module}.{node.name}: {n} lines"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_says_what_it_holds(module):
    doc = ast.get_docstring(ast.parse(MODULES[module].read_text()))
    assert doc and len(doc) > 20, f"{module} has no docstring saying what it holds"
