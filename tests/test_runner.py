"""The papermill runner: parameter routing, clear errors, and the whole suite on the smoke profile."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest
from conftest import REPO

from advlib import config, runner
from advlib.paths import RunPaths


def test_every_notebook_declares_common_parameters_and_has_no_outputs():
    for nb_path in runner.list_notebooks():
        params = runner.notebook_parameters(nb_path)
        assert set(runner.COMMON) <= set(params), nb_path.name
        nb = nbformat.read(nb_path, as_version=4)
        (pcell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assigned = [ln.split("=")[0].strip() for ln in pcell.source.splitlines() if "=" in ln.split("#")[0]]
        assert sorted(assigned) == sorted(params), f"{nb_path.name}: papermill could not parse every parameter"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs, f"{nb_path.name} committed with outputs"
                src = cell.source
                assert not any(line.lstrip().startswith(("def ", "class ")) for line in src.splitlines()), nb_path.name
                assert len(src.splitlines()) <= 12, f"{nb_path.name}: a code cell longer than ~10 lines"


def test_split_parameters_routes_profile_fields_and_notebook_params():
    declared = {"a.ipynb": {"profile": {}, "run_dir": {}, "overrides": {}, "dataset": {}},
                "b.ipynb": {"profile": {}, "run_dir": {}, "overrides": {}}}
    overrides, per_nb = runner.split_parameters([("epochs", "3"), ("dataset", "d_rand")], declared)
    assert overrides == {"epochs": "3"}
    assert per_nb == {"a.ipynb": {"dataset": "d_rand"}, "b.ipynb": {}}
    with pytest.raises(runner.RunError, match="unknown parameter 'epoch'"):
        runner.split_parameters([("epoch", "3")], declared)
    with pytest.raises(runner.RunError, match="set by the runner"):
        runner.split_parameters([("run_dir", "x")], declared)


def test_cli_unknown_parameter_exits_nonzero_naming_it(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "advlib", "run", "--profile", "smoke", "--out", str(tmp_path),
                           "-p", "no_such_knob", "1"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert "no_such_knob" in proc.stderr
    assert not (tmp_path / "notebooks").exists() or not any((tmp_path / "notebooks").iterdir())


def test_cli_bad_profile_value_exits_nonzero(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "advlib", "run", "--profile", "smoke", "--out", str(tmp_path),
                           "-p", "epochs", "three"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1 and "epochs" in proc.stderr


def test_failing_notebook_is_named_with_its_cell(tmp_path):
    nb_dir = tmp_path / "nbs"
    nb_dir.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell('profile = "smoke"\nrun_dir = ""\noverrides = ""')
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('boom')")]
    nbformat.write(nb, nb_dir / "01_fails.ipynb")
    with pytest.raises(runner.RunError, match=r"01_fails.ipynb failed in cell \d+.*ValueError: boom"):
        runner.run("smoke", tmp_path / "out", notebooks_dir=nb_dir)


@pytest.mark.slow
def test_smoke_suite_end_to_end(tmp_path):
    """The whole suite through the CLI: executed notebooks, four constructed sets, all rows in results.json."""
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "advlib", "run", "--profile", "smoke", "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    paths = RunPaths.of(out)
    executed = sorted(p.name for p in paths.notebooks.glob("*.ipynb"))
    assert executed == [p.name for p in runner.list_notebooks()]
    for name in executed:  # executed copies carry outputs and no error
        nb = nbformat.read(paths.notebooks / name, as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert outputs and not any(o.output_type == "error" for o in outputs), name
    assert sorted(paths.available("constructed")) == sorted(config.DATASETS)
    results = json.loads(paths.results.read_text())
    assert results["profile"] == "smoke"
    names = {r["dataset"] for r in results["rows"]}
    assert names == {"standard", "adversarial", *config.DATASETS}
    for row in results["rows"]:
        assert 0.0 <= row["robust_acc"]["0.25"] <= row["clean_acc"] <= 1.0
    timings = json.loads(paths.timings.read_text())
    assert set(timings) == set(executed) and all(v > 0 for v in timings.values())
    assert (paths.root / "report.md").is_file()
    for fig in ("fig_cifar_grid", "fig_accuracy_vs_eps", "fig_results_vs_paper"):
        assert (paths.figures / f"{fig}.png").stat().st_size > 1000


def test_cli_download_unreachable_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "advlib", "download", "--release", "--root", str(tmp_path),
                           "--url", "http://127.0.0.1:9/datasets.tar"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert "could not reach http://127.0.0.1:9/datasets.tar" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "datasets.tar").exists()
