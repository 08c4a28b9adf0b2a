"""The notebooks are their own source: each is committed as a pair, ``notebooks/NN_name.ipynb``
(without outputs) and its percent-format twin ``NN_name.py``, paired by jupytext through
``notebooks/jupytext.toml``. Edit a notebook in JupyterLab (``make lab``: a save writes both files) or
its ``.py`` twin in an editor, then ``jupytext --sync notebooks/*.ipynb``; commit both. Nothing
regenerates them, so these checks keep every pair in sync and in the shape the notebooks share.

Files only (jupytext, nbformat and ``ast``; no kernel), a second or two in all.
"""

from __future__ import annotations

import ast
import difflib
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
from conftest import REPO
from IPython.core.inputtransformer2 import TransformerManager
from jupytext.config import find_jupytext_configuration_file, load_jupytext_config, notebook_formats
from jupytext.formats import short_form_multiple_formats

NB_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))
FMT = "py:percent"
PAIRING = "ipynb,py:percent"
# Non-empty lines per code cell. The longest today is 09's parameters cell (8 lines); every other code
# cell has at most 6. Longer logic belongs in advlib.
MAX_CODE_LINES = 8
# The parameters every notebook opens with, in this order, with these defaults (runner and `make lab` rely on them).
COMMON_PARAMS = {"profile": "smoke", "run_dir": "", "overrides": "", "figures_dir": ""}
SETUP_CALL = "run = step.setup(profile, run_dir, overrides, figures_dir)"
# Each notebook's code is one module of advlib.steps (09, the Gaussian model, trains no network: its
# code is advlib.gaussian, with the run from advlib.steps.base).
STEPS = {"01": "data", "02": "construct", "03": "visualize", "04": "train", "05": "evaluate", "06": "report",
         "07": "controls", "08": "transfer", "09": "base", "10": "beyond"}
# 01-08 share the sentence after the parameters verbatim; 09 has its own.
PIPELINE = [p for p in NOTEBOOKS if p.name[:2] <= "08"]
# A repository path cited in a cell: a top-level folder of the repository, then a file or folder name.
REPO_PATH = re.compile(r"(?<![\w./<>-])((?:advlib|benchmarks|docs|notebooks|results|tests|tools)/[\w.\-/]*)")
DEFINES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)

by_notebook = pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])


def _where(path: Path, i: int, cell) -> str:
    first = cell.source.splitlines()[0] if cell.source else ""
    return f"{path.name}, cell {i} ({cell.cell_type}: {first[:60]!r})"


def _config(path: Path):
    return load_jupytext_config(str(path))


def _ipynb(path: Path):
    return nbformat.read(path, as_version=4)


def _twin(path: Path):
    """The .py twin as jupytext reads it (with the notebooks' jupytext.toml)."""
    return jupytext.read(path.with_suffix(".py"), fmt=FMT, config=_config(path))


def _tags(cell) -> list[str]:
    return list(cell.metadata.get("tags", []))


def _code(cell) -> str:
    """A code cell's source as Python (IPython magics, if any, become calls)."""
    return TransformerManager().transform_cell(cell.source)


def _diff(a: str, b: str, a_name: str, b_name: str) -> str:
    return "".join(list(difflib.unified_diff(a.splitlines(True), b.splitlines(True), a_name, b_name))[:40])


def _parameters(nb) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if "parameters" in _tags(c)]


# --- the pairs --------------------------------------------------------------------------------------
def test_every_notebook_has_a_twin_and_every_twin_a_notebook():
    assert NOTEBOOKS, f"no notebooks NN_*.ipynb in {NB_DIR}"
    twins = sorted(p.stem for p in NB_DIR.glob("[0-9][0-9]_*.py"))
    assert twins == [p.stem for p in NOTEBOOKS], ("a notebook without its .py twin, or a .py without its "
                                                  "notebook: run jupytext --sync notebooks/*.ipynb (or delete it)")


@by_notebook
def test_jupytext_config_pairs_the_notebook(path):
    assert find_jupytext_configuration_file(str(path.parent)) == str(NB_DIR / "jupytext.toml")
    formats = short_form_multiple_formats(notebook_formats(_ipynb(path), _config(path), str(path)))
    assert formats == PAIRING, f"{path.name} is paired as {formats!r}, expected {PAIRING!r}"


@by_notebook
def test_pair_holds_the_same_cells(path):
    nb, twin = _ipynb(path), _twin(path)
    hint = "run jupytext --sync notebooks/*.ipynb (it updates the older file of each pair)"
    for i, (a, b) in enumerate(zip(nb.cells, twin.cells, strict=False)):  # the count is checked after
        where = _where(path, i, a)
        assert a.cell_type == b.cell_type, f"{where}: {a.cell_type} in the .ipynb, {b.cell_type} in the .py; {hint}"
        assert a.source == b.source, f"{where}: the .py holds another source:\n" + _diff(
            a.source + "\n", b.source + "\n", path.name, path.with_suffix(".py").name) + hint
        assert _tags(a) == _tags(b), f"{where}: tags {_tags(a)} in the .ipynb, {_tags(b)} in the .py; {hint}"
    assert len(nb.cells) == len(twin.cells), (f"{path.name}: {len(nb.cells)} cells in the .ipynb, "
                                              f"{len(twin.cells)} in the .py; {hint}")


@by_notebook
def test_twin_round_trips_and_is_what_a_save_writes(path):
    py, config = path.with_suffix(".py"), _config(path)
    text = py.read_text()
    again = jupytext.writes(jupytext.reads(text, fmt=FMT, config=config), fmt=FMT, config=config)
    assert again == text, f"{py.name} changes when jupytext reads and writes it back:\n" + _diff(
        text, again, py.name, f"{py.name} (round trip)")
    saved = jupytext.writes(jupytext.read(path), fmt=FMT, config=config)
    assert saved == text, (f"{py.name} is not what a save of {path.name} writes (run jupytext --sync):\n"
                           + _diff(text, saved, py.name, f"{py.name} (from {path.name})"))


@by_notebook
def test_ipynb_is_committed_without_outputs_or_widget_state(path):
    nb = _ipynb(path)
    nbformat.validate(nb)  # the schema of nbformat 4.5: ids present and unique
    meta = nb.metadata
    assert "widgets" not in meta, f"{path.name}: saved with widget state (turn off Settings > Save Widget State Automatically)"
    assert set(meta) <= {"kernelspec", "language_info", "jupytext"}, f"{path.name}: metadata {sorted(meta)}"
    assert meta["kernelspec"]["name"] == "python3", f"{path.name}: kernelspec {meta['kernelspec']}"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{_where(path, i, cell)}: committed with outputs (clear them, then save)"
            assert cell.execution_count is None, f"{_where(path, i, cell)}: execution_count {cell.execution_count}"


# --- the shape every notebook shares ---------------------------------------------------------------------
@by_notebook
def test_one_parameters_cell_of_plain_scalars_in_both_files(path):
    nb, twin = _ipynb(path), _twin(path)
    for name, book in ((path.name, nb), (path.with_suffix(".py").name, twin)):
        tagged = _parameters(book)
        assert len(tagged) == 1, f"{name}: {len(tagged)} cells tagged 'parameters' (cells {tagged}), expected one"
    assert '# %% tags=["parameters"]' in path.with_suffix(".py").read_text(), f"{path.stem}.py: no tagged cell marker"
    (i,) = _parameters(nb)
    cell = nb.cells[i]
    where = _where(path, i, cell)
    assert cell.cell_type == "code", f"{where}: the parameters cell must be a code cell"
    values = {}
    for stmt in ast.parse(cell.source).body:
        plain = (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                 and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, (str, int, float, bool)))
        assert plain, f"{where}, line {stmt.lineno}: {ast.unparse(stmt)!r} is not `name = <scalar or string>`"
        assert stmt.targets[0].id not in values, f"{where}: {stmt.targets[0].id} assigned twice"
        values[stmt.targets[0].id] = stmt.value.value
    first = dict(list(values.items())[:len(COMMON_PARAMS)])
    assert first == COMMON_PARAMS, f"{where}: opens with {first}, expected {COMMON_PARAMS} in this order"


@by_notebook
def test_shared_header_title_parameters_sentence_setup(path):
    cells = _ipynb(path).cells
    assert len(cells) > 4, f"{path.name}: only {len(cells)} cells"
    title = f"# {int(path.name[:2])} · "
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith(title), (
        f"{_where(path, 0, cells[0])}: the first cell must be markdown starting with {title!r}")
    assert _parameters(_ipynb(path)) == [1], f"{path.name}: the parameters cell must be cell 1 (the second)"
    assert cells[2].cell_type == "markdown", f"{_where(path, 2, cells[2])}: a sentence on the parameters expected"
    setup = cells[3]
    where = _where(path, 3, setup)
    assert setup.cell_type == "code", f"{where}: the setup cell must be code"
    stmts = ast.parse(_code(setup)).body
    imports = {(a.name, a.asname) for s in stmts if isinstance(s, ast.Import) for a in s.names}
    module = f"advlib.steps.{STEPS[path.name[:2]]}"
    assert (module, "step") in imports, f"{where}: must `import {module} as step` (the notebook's steps)"
    assert SETUP_CALL in [ast.unparse(s) for s in stmts], f"{where}: must run `{SETUP_CALL}`"


def test_pipeline_notebooks_share_the_sentence_verbatim():
    assert [p.name[:2] for p in PIPELINE] == [f"{n:02d}" for n in range(1, 9)], [p.name for p in PIPELINE]
    first = _ipynb(PIPELINE[0]).cells
    for path in PIPELINE[1:]:
        cells = _ipynb(path).cells
        for i in (2,):
            assert cells[i].source == first[i].source, (
                f"{_where(path, i, cells[i])} differs from {PIPELINE[0].name}'s (01-08 share it verbatim: "
                "change all eight or none)")


@by_notebook
def test_code_cells_are_thin_and_define_nothing(path):
    for i, cell in enumerate(_ipynb(path).cells):
        if cell.cell_type != "code":
            continue
        where = _where(path, i, cell)
        lines = [ln for ln in cell.source.splitlines() if ln.strip()]
        assert len(lines) <= MAX_CODE_LINES, (f"{where}: {len(lines)} non-empty lines (at most {MAX_CODE_LINES}: "
                                              "move the logic into an advlib function)")
        try:
            tree = ast.parse(_code(cell))
        except SyntaxError as err:
            pytest.fail(f"{where}: not valid Python ({err})")
        for node in ast.walk(tree):
            assert not isinstance(node, DEFINES), (
                f"{where}, line {node.lineno}: {type(node).__name__} in a notebook (define it in advlib)")


@by_notebook
def test_cited_repository_paths_exist(path):
    for i, cell in enumerate(_ipynb(path).cells):
        for m in REPO_PATH.finditer(cell.source):
            if cell.source[m.end():m.end() + 1] in ("<", "*", "{"):  # a pattern (results/<run>/...), not a path
                continue
            cited = m.group(1).rstrip("./")
            assert (REPO / cited).exists(), f"{_where(path, i, cell)}: cites {cited}, which is not in the repository"
