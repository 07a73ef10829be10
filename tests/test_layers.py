"""The package's layers stay visible: no import cycles, h5py only in the I/O modules,
matplotlib only in the plotting module, the CLI free of numerics.

Read from the source with :mod:`ast` (every import statement, also those inside
functions), so a lazy import cannot hide a cycle or a layer violation.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "mcscan"


def _modules() -> dict:
    """{dotted module name: path} of every module of the package."""
    out = {}
    for f in PKG.rglob("*.py"):
        parts = f.relative_to(PKG.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str) -> list:
    """(imported dotted name, top-level external package or None) for every import in ``name``."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    pkg = name if _is_package(name) else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out.append(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append(mod)
            for a in node.names:            # "from . import x" may name a submodule
                if f"{mod}.{a.name}" in MODULES:
                    out.append(f"{mod}.{a.name}")
    return out


def _internal_graph() -> dict:
    """Edges between modules of the package; imports of a package's __init__ (its
    face, which only hands names on) are not edges."""
    graph = {}
    for name in MODULES:
        deps = set()
        for imp in _imports(name):
            if imp in MODULES and imp != name and not _is_package(imp):
                deps.add(imp)
        graph[name] = deps
    return graph


def test_no_import_cycles():
    graph = _internal_graph()
    state, stack, cycles = {}, [], []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def _importers_of(top: str) -> set:
    return {n for n in MODULES if any(i == top or i.startswith(top + ".") for i in _imports(n))}


def test_only_io_modules_import_h5py():
    bad = {n for n in _importers_of("h5py") if not n.startswith("mcscan.io")}
    assert not bad, f"h5py imported outside mcscan.io: {sorted(bad)}"


def test_only_the_plot_module_imports_matplotlib():
    bad = _importers_of("matplotlib") - {"mcscan.plot"}
    assert not bad, f"matplotlib imported outside mcscan.plot: {sorted(bad)}"


@pytest.mark.parametrize("layer, forbidden", [
    ("mcscan.physics", ("mcscan.io", "mcscan.scans", "mcscan.cli", "mcscan.api", "mcscan.stats")),
    ("mcscan.stats", ("mcscan.io", "mcscan.scans", "mcscan.cli", "mcscan.api")),
    ("mcscan.io", ("mcscan.scans", "mcscan.cli", "mcscan.api", "mcscan.plot")),
    ("mcscan.scans", ("mcscan.cli", "mcscan.api", "mcscan.plot")),
    ("mcscan.cli", ("mcscan.stats", "mcscan.physics", "mcscan.tables", "numba")),
])
def test_layers_import_only_downwards(layer, forbidden):
    bad = []
    for n in MODULES:
        if n == layer or n.startswith(layer + "."):
            for imp in _imports(n):
                if any(imp == f or imp.startswith(f + ".") for f in forbidden):
                    bad.append(f"{n} -> {imp}")
    assert not bad, f"{layer} reaches up or sideways: {bad}"


def test_no_reference_outside_the_repository():
    root = PKG.parent
    hits = []
    for f in list(root.rglob("*.py")) + list(root.rglob("*.md")) + list(root.rglob("*.toml")):
        if any(p in f.parts for p in (".git", "build", ".venv", "venv")):
            continue
        text = f.read_text(errors="replace")
        # the needles are assembled so that this file does not hold them itself
        for needle in ("PHYSICS" + ".md", "shared" + "/spec", "../" + "shared"):
            if needle in text:
                hits.append(f"{f.relative_to(root)}: {needle}")
    assert not hits, hits
