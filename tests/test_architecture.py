"""The house plan, enforced: hierfit's import graph read with ``ast`` (function-level imports count).

``hierfit.families`` stands beside the stages rather than in one: a family is one object that
carries its behaviour for every stage (links, distributional parameters and default priors for
the specification, its PyMC likelihood for the engine, its kernel code, its response-scale
moments for analysis, its LaTeX for the equation), importing PyMC only inside the methods the
engine calls.

Walls:
* no import cycles among hierfit modules;
* ``hierfit.spec`` imports no pymc, pytensor, numba or nutpie, not even inside functions;
* ``hierfit.plots`` and ``hierfit.analysis`` never import ``hierfit.engine``;
* the compiled kernel imports nothing from the PyMC model modules;
* the command line imports only the public ``hierfit`` package;
* no module imports another module's underscore-prefixed name;
* no module is over 600 lines, except the kernel's density file, which stays one cohesive
  algorithm (the full and the collapsed log density with their exact gradients).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "hierfit"
MAX_LINES = 600
LONG_ALLOWED = {"hierfit.engine.kernel.density"}
HEAVY = ("pymc", "pytensor", "numba", "nutpie")
PYMC_MODEL_MODULES = ("hierfit.engine.model", "hierfit.engine.collapsed")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


MODULES = _modules()


def _imports(name: str) -> list[tuple[str, list[str], int]]:
    """(imported module, imported names, line) for every import statement, at any depth."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((a.name, [], node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([mod] if mod else []))
            names = [a.name for a in node.names]
            out.append((mod, names, node.lineno))
    return out


def _resolve(mod: str, names: list[str]) -> list[str]:
    """The hierfit modules an import statement loads (``from hierfit.x import y`` may name a module y)."""
    submodules = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in MODULES]
    if mod in MODULES and (not names or len(submodules) < len(names)):
        return [mod] + submodules
    return submodules


def _graph() -> dict[str, set[str]]:
    graph = {m: set() for m in MODULES}
    for m in MODULES:
        for mod, names, _ in _imports(m):
            for t in _resolve(mod, names):
                if t != m:
                    graph[m].add(t)
    return graph


def _is_ancestor_package(a: str, b: str) -> bool:
    """Importing ``hierfit.x.y`` runs ``hierfit/x/__init__``; a package importing its own submodule is no cycle."""
    return b.startswith(a + ".")


def test_no_import_cycles():
    graph = _graph()
    # a package's __init__ importing its submodules (and those importing siblings) is how packages work:
    # only module-to-module edges that are not package-to-own-child are followed
    edges = {m: {t for t in ts if not _is_ancestor_package(m, t)} for m, ts in graph.items()}
    cycles, state, stack = [], {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _violations(prefix: str, forbidden) -> list[str]:
    bad = []
    for m in MODULES:
        if m == prefix or m.startswith(prefix + "."):
            for mod, names, line in _imports(m):
                if forbidden(mod, names):
                    bad.append(f"{MODULES[m].relative_to(PKG.parent)}:{line} imports {mod} {names}")
    return bad


def test_spec_imports_no_sampling_engine():
    bad = _violations("hierfit.spec", lambda mod, names: mod.split(".")[0] in HEAVY
                      or mod == "hierfit.engine" or mod.startswith("hierfit.engine."))
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("layer", ["hierfit.plots", "hierfit.analysis", "hierfit.data"])
def test_plots_and_analysis_never_import_the_engine(layer):
    bad = _violations(layer, lambda mod, names: mod == "hierfit.engine" or mod.startswith("hierfit.engine."))
    assert not bad, "\n".join(bad)


def test_kernel_never_imports_the_pymc_model():
    bad = _violations("hierfit.engine.kernel", lambda mod, names: any(
        t in PYMC_MODEL_MODULES for t in _resolve(mod, names)) or mod in PYMC_MODEL_MODULES)
    assert not bad, "\n".join(bad)


def test_cli_uses_only_the_public_package():
    bad = [f"hierfit/cli.py:{line} imports {mod} {names}" for mod, names, line in _imports("hierfit.cli")
           if mod.startswith("hierfit") and (mod != "hierfit" or any(n.startswith("_") for n in names))]
    assert not bad, "\n".join(bad)


def test_no_private_names_cross_modules():
    bad = []
    for m in MODULES:
        for mod, names, line in _imports(m):
            if not mod.startswith("hierfit"):
                continue
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            private_module = any(part.startswith("_") and part != "__init__" for part in mod.split("."))
            if (private or private_module) and mod != m:
                bad.append(f"{MODULES[m].relative_to(PKG.parent)}:{line} imports {mod} {private or ''}")
    assert not bad, "\n".join(bad)


def test_modules_are_small():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert set(long) <= LONG_ALLOWED, {m: n for m, n in long.items() if m not in LONG_ALLOWED}


def test_the_walls_can_fail(tmp_path):
    """The graph reader sees function-level imports, relative imports and private names."""
    src = "def f():\n    from hierfit.engine.model import _x\n    from .sibling import y\n"
    tree = ast.parse(src)
    found = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert [f.module for f in found] == ["hierfit.engine.model", "sibling"] and found[1].level == 1
    assert _resolve("hierfit.engine", ["model"]) == ["hierfit.engine.model"]
