"""The house: every module imports only from its own floor or below, and there are no import circles
(every import counts, also those inside functions). Module size stays readable."""

from __future__ import annotations

import ast

from conftest import REPO

PKG = REPO / "advlib"
FLOORS = {  # 0 ground, 1 data, 2 middle, 3 steps (one module per notebook), 4 top
    "config": 0, "utils": 0, "paths": 0, "models": 0, "attacks": 0, "strong": 0, "stats": 0, "loader": 0, "dist": 0,
    "external": 0, "recipes": 0, "dotted": 0, "provenance": 0, "builders": 0, "beyond_settings": 0,
    "synthesis": 0, "bugs": 0, "leakage": 0,  # notebook 10's algorithms: functions of tensors and models
    "data": 1,
    "train": 2, "evaluate": 2, "results": 2, "verdicts": 2, "tables": 2, "construct": 2, "controls": 2,
    "transfer": 2, "gaussian": 2, "viz": 2, "widgets": 2, "beyond": 2,
    "steps": 3,
    "runner": 4, "__main__": 4, "dist.__main__": 4, "htmlreport": 4,
}


def _modules() -> dict[str, ast.Module]:
    out = {}
    for f in PKG.rglob("*.py"):
        rel = f.relative_to(PKG).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts) or "advlib"] = (ast.parse(f.read_text()), f.name == "__init__.py")
    return out


def _floor(mod: str) -> int:
    if mod in FLOORS:
        return FLOORS[mod]
    return FLOORS[mod.split(".")[0]]


def _imports(mods) -> dict[str, set[str]]:
    edges = {m: set() for m in mods}
    for m, (tree, is_pkg) in mods.items():
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = m.split(".") if m != "advlib" else []
                    base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    if not (node.module or "").startswith("advlib"):
                        continue
                    prefix = node.module.removeprefix("advlib").lstrip(".")
                targets = [prefix] + [f"{prefix}.{a.name}" if prefix else a.name for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name.removeprefix("advlib").lstrip(".") for a in node.names if a.name.startswith("advlib")]
            for t in targets:
                if t in mods and t != m and t and not m.startswith(t + "."):
                    edges[m].add(t)
    return edges


def test_every_module_has_a_floor_and_imports_only_downward():
    mods = _modules()
    unknown = sorted(m for m in mods if m != "advlib" and m.split(".")[0] not in FLOORS)
    assert not unknown, f"modules without a floor in this test: {unknown}"
    edges = _imports(mods)
    upward = sorted(f"{m} -> {t}" for m, ts in edges.items() if m != "advlib" for t in ts if _floor(t) > _floor(m))
    assert not upward, f"imports from a higher floor: {upward}"


def test_no_import_circles():
    mods = _modules()
    edges = {m: {t for t in ts} for m, ts in _imports(mods).items() if m != "advlib"}
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for t in edges.get(m, ()):
            if state.get(t) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if not state.get(t):
                visit(t, stack + [t])
        state[m] = 2

    for m in edges:
        if not state.get(m):
            visit(m, [m])


def test_modules_stay_readable():
    long = {f.relative_to(REPO).as_posix(): n for f in PKG.rglob("*.py")
            if (n := len(f.read_text().splitlines())) > 500}
    assert not long, f"modules past 500 lines (split by concept): {long}"


def test_each_notebook_calls_one_steps_module():
    """Notebook N's code is one file: its setup cell imports one module of advlib.steps (09: the
    Gaussian model's own package), and no cell imports another part of advlib."""
    import json

    for nb in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = ["".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        imports = [line for c in cells for line in c.splitlines() if "advlib" in line and "import" in line]
        steps = [i for i in imports if i.startswith("import advlib.steps.")]
        assert len(steps) == 1, (nb.name, imports)
        others = [i for i in imports if i not in steps and not i.startswith("from advlib import gaussian")]
        assert not others, (nb.name, others)
