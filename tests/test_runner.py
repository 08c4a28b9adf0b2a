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
from advlib.results import ROW_LABELS


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
    overrides, per_nb = runner.split_parameters([("sets.rnr.epochs", "3"), ("dataset", "d_rand"), ("seed", "1"),
                                                 ("rnr_augment", "flip")], declared)
    assert overrides == {"sets.rnr.epochs": "3", "seed": "1", "rnr_augment": "flip"}  # an old key still counts
    assert per_nb == {"a.ipynb": {"dataset": "d_rand"}, "b.ipynb": {}}
    with pytest.raises(runner.RunError, match="unknown parameter 'epoch'"):
        runner.split_parameters([("epoch", "3")], declared)
    with pytest.raises(runner.RunError, match="set by the runner"):
        runner.split_parameters([("run_dir", "x")], declared)


def test_old_profile_keys_reach_the_notebooks_as_their_new_keys(capsys):
    assert runner.current_keys("cpu", {"source_epochs": "3", "seed": "1", "rand_det_epochs": "0"}) == {
        "sources.standard.epochs": "3", "sets.rand.epochs": 20, "sets.det.epochs": 20, "seed": "1"}
    err = capsys.readouterr().err
    assert "'source_epochs' is deprecated" in err and "sources.standard.epochs" in err and "rand_det_epochs" in err


def test_the_old_source_parameter_sets_the_origin(capsys):
    declared = {"a.ipynb": {"profile": {}, "run_dir": {}, "overrides": {}, "origin": {"default": "''"}}}
    assert runner.split_parameters([("source", "released")], declared) == ({"origin": "released"}, {"a.ipynb": {}})
    assert "now 'origin'" in capsys.readouterr().err


def test_cli_unknown_parameter_exits_nonzero_naming_it(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "advlib", "run", "--profile", "smoke", "--out", str(tmp_path),
                           "-p", "no_such_knob", "1"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert "no_such_knob" in proc.stderr
    assert not (tmp_path / "notebooks").exists() or not any((tmp_path / "notebooks").iterdir())


def test_cli_bad_profile_value_exits_nonzero(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "advlib", "run", "--profile", "smoke", "--out", str(tmp_path),
                           "-p", "sets.rnr.epochs", "three"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1 and "'sets.rnr.epochs': expected int, got 'three'" in proc.stderr


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


def _run_cli(out, *extra, timeout=900, **kw):
    return subprocess.run([sys.executable, "-m", "advlib", "run", "--profile", "smoke", "--out", str(out), *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The whole suite through the CLI, uninterrupted (shared by the tests below)."""
    out = tmp_path_factory.mktemp("smoke") / "run"
    proc = _run_cli(out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc


def _comparable(results: dict) -> list[dict]:
    """results.json rows without wall-clock fields."""
    drop = {"seconds", "eval_seconds", "autoattack_seconds"}
    return [{k: v for k, v in r.items() if k not in drop} for r in results["rows"]]


@pytest.mark.slow
def test_smoke_suite_end_to_end(smoke_run):
    """The whole suite through the CLI: executed notebooks, four constructed sets, all rows in results.json
    with the provenance and evaluation fields a reviewer needs."""
    out, proc = smoke_run
    paths = RunPaths.of(out)
    executed = sorted(p.name for p in paths.notebooks.glob("*.ipynb"))
    assert executed == [p.name for p in runner.list_notebooks()]
    for name in executed:  # executed copies carry outputs and no error
        nb = nbformat.read(paths.notebooks / name, as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert outputs and not any(o.output_type == "error" for o in outputs), name
        texts = [o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs]
        assert not any("torch._C.Generator" in t for t in texts), f"{name}: a stray output"
    assert sorted(paths.available("constructed")) == sorted(config.DATASETS)
    results = json.loads(paths.results.read_text())
    assert results["profile"] == "smoke"
    assert results["machine"]["device"] == "cpu" and results["machine"]["torch"]
    names = {r["dataset"] for r in results["rows"]}
    base = {"standard", "adversarial", *config.DATASETS, *config.CONTROL_SETS, *config.MATCHED_CONTROLS}
    beyond = {name for name in ROW_LABELS if name.endswith("_linf")} | {  # notebook 10
        "synthesis_robust", "synthesis_standard", "d_det_bugs", "d_det_subset", "leakage_d_rand", "leakage_d_det"}
    assert base | beyond <= names <= base | set(config.SUBSET_VARIANTS) | beyond  # a variant may be left out
    linf = str(float(config.get_profile("smoke").beyond.linf_eps))
    for row in results["rows"]:
        assert row["clean_ci95"][0] <= row["clean_acc"] <= row["clean_ci95"][1] and row["seed"] == 0
        assert len(row["checkpoint_sha256"]) == 64 and len(row["dataset_sha256"]) == 64 and row["masks"]
        if row.get("measure"):  # notebook 10's probe and synthesis rows: no model evaluated under attack
            assert row["dataset"] in beyond and row["study"] == "beyond"
            continue
        if row.get("norm") == "linf":  # notebook 10: under L∞ at beyond.linf_eps
            assert set(row["robust_acc"]) == {linf} and row["dataset"] in beyond and row["arch"] == "tiny"
            assert 0.0 <= row["robust_acc"][linf] <= row["pgd_acc"][linf] <= row["clean_acc"] <= 1.0
            continue
        # clean and robust accuracy come from the same images: robust never exceeds clean
        assert 0.0 <= row["robust_acc"]["0.25"] <= row["pgd_acc"]["0.25"] <= row["clean_acc"] <= 1.0
        assert row["eval_dtype"] == "float32" and row["device"] == "cpu" and row["seed"] == 0
        assert row["clean_ci95"][0] <= row["clean_acc"] <= row["clean_ci95"][1]
        assert row["robust_ci95"]["0.25"][0] <= row["robust_acc"]["0.25"] <= row["robust_ci95"]["0.25"][1]
        if row["dataset"] in ("standard", "adversarial", "d_robust", "d_non_robust", "control_rnr"):
            assert row["autoattack_n"] == 20 and 0 <= row["autoattack_acc"]["0.25"] <= 1  # the cross-check
        if row["dataset"] in config.DATASETS:
            assert row["control"] == config.MATCHED_CONTROL[row["dataset"]]
        assert len(row["checkpoint_sha256"]) == 64 and len(row["dataset_sha256"]) == 64 and row["arch"] == "tiny"
    for name in config.DATASETS + config.CONTROL_SETS:  # each model learned from the set now on disk
        row = next(r for r in results["rows"] if r["dataset"] == name)
        assert row["dataset_sha256"] == json.loads((paths.dataset(name) / "meta.json").read_text())["sha256"]
    timings = json.loads(paths.timings.read_text())
    assert set(timings) == set(executed) and all(v > 0 for v in timings.values())
    report = paths.report.read_text()
    assert "near chance by design" in report and "float32" in report and "## The paper's claims" in report
    assert "**Supported**" not in report, "a smoke run (one seed, near chance) supports nothing"
    for fig in ("fig_cifar_grid", "fig_accuracy_vs_eps", "fig_results_vs_paper", "fig_side_by_side",
                "fig_beyond_linf", "fig_synthesis", "fig_just_bugs", "fig_leakage"):
        assert (paths.figures / f"{fig}.png").stat().st_size > 1000
    n = len(executed)
    assert f"[advlib] ({n}/{n}) " in proc.stdout and (out / "transfer.json").is_file()
    transfer = json.loads((out / "transfer.json").read_text())
    assert len(transfer["rows"]) >= 4
    assert "construct d_robust" in proc.stderr, "in-notebook progress streams to the console"
    assert "running over TCP" not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_killed_run_rerun_reproduces_the_uninterrupted_results(smoke_run, tmp_path):
    """Kill the whole run (runner and kernel) in the middle of construction, run it again: the
    results.json rows equal the uninterrupted run's (wall-clock fields aside)."""
    import os
    import signal
    import time

    reference, _ = smoke_run
    out = tmp_path / "run"
    shard = out / "datasets" / "constructed" / "d_non_robust" / "shards" / "shard_00000.pt"
    proc = subprocess.Popen([sys.executable, "-m", "advlib", "run", "--profile", "smoke", "--out", str(out)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while not shard.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before the kill point"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "results.json").exists()
    again = _run_cli(out)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    ref = json.loads((reference / "results.json").read_text())
    got = json.loads((out / "results.json").read_text())
    assert _comparable(got) == _comparable(ref)


def test_cli_download_unreachable_is_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "advlib", "download", "--release", "--root", str(tmp_path),
                           "--url", "http://127.0.0.1:9/datasets.tar"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert "could not reach http://127.0.0.1:9/datasets.tar" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "datasets.tar").exists()


# --- every value checked before anything runs; paths against the caller's directory -------------------
def test_paths_resolve_against_the_callers_directory(tmp_path, monkeypatch):
    (tmp_path / "my.zip").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    overrides, per_nb = {"cifar_source": "my.zip", "release": "skip"}, {"a.ipynb": {"figures_dir": "figs"}}
    runner.resolve_paths(overrides, per_nb)
    assert overrides == {"cifar_source": str(tmp_path / "my.zip"), "release": "skip"}
    assert per_nb["a.ipynb"]["figures_dir"] == str(tmp_path / "figs")
    with pytest.raises(runner.RunError, match="cifar_source.*nope.zip"):
        runner.resolve_paths({"cifar_source": "nope.zip"}, {})
    overrides = {"cifar_source": "sample"}
    runner.resolve_paths(overrides, {})
    assert overrides == {"cifar_source": "sample"}


@pytest.mark.parametrize("args,match", [
    (["-p", "dataset", "d_nope"], "parameter 'dataset'"),
    (["-p", "which", "d_rand,d_x"], "parameter 'which'"),
    (["-p", "origin", "elsewhere"], "origin must be constructed|released"),  # the profile's, for every notebook
    (["-p", "source", "elsewhere"], "origin must be constructed|released"),  # the notebooks' old name
    (["-p", "eval_sweep", "0,abc"], "eval_sweep.*abc"),
    (["-p", "device", "tpu"], "device.*tpu"),
    (["-p", "arch", "vgg99"], "arch"),
    (["-p", "sets.rand.augment", "crop,zoom"], "sets.rand.augment"),
    (["-p", "augment", "crop,zoom"], "sources.robust.augment"),  # the old key, as the keys it sets
    (["-p", "sources.standard.epoch", "3"], "valid keys of sources.standard: arch, epochs"),
    (["-p", "cifar_source", "no/such.zip"], "cifar_source"),
])
def test_bad_values_are_rejected_before_any_notebook_runs(tmp_path, args, match):
    params = [tuple(args[i + 1:i + 3]) for i in range(0, len(args), 3)]
    with pytest.raises((runner.RunError, ValueError), match=match):
        runner.run("smoke", tmp_path / "r", params)
    assert not (tmp_path / "r").exists(), "nothing written before the values are checked"


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    for args, match in ((["-p", "eval_sweep", "0,abc"], "eval_sweep"), (["-p", "device", "tpu"], "device")):
        proc = subprocess.run([sys.executable, "-m", "advlib", "run", "--profile", "smoke", "--out",
                               str(tmp_path / "r"), *args], capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 1 and match in proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_gpu_profile_without_cuda_asks_for_an_explicit_choice(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(runner.RunError, match="no CUDA device; pass -p device cpu"):
        runner.check_device(config.get_profile("fast"))
    runner.check_device(config.get_profile("fast", device="cpu"))  # an explicit choice is respected
    runner.check_device(config.get_profile("cpu"))


def test_cli_table_prints_the_run_tables(tmp_path):
    from advlib.results import results_row, update_results
    from advlib.tables import render

    update_results(tmp_path / "results.json", results_row("d_rand", "constructed",
                                                          {"clean_acc": 0.3, "robust_acc": {"0.25": 0.0}}, seed=0),
                   profile=config.get_profile("smoke"))
    proc = subprocess.run([sys.executable, "-m", "advlib", "table", str(tmp_path / "results.json")],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == render(json.loads((tmp_path / "results.json").read_text()))
    assert "| D_rand (adv. to random class) | constructed | 30.0% |" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "advlib", "table", str(tmp_path / "none.json")],
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 1 and "none.json" in bad.stderr and "Traceback" not in bad.stderr


def test_profiles_into_a_closed_pipe_and_dist_bad_params_are_quiet():
    proc = subprocess.run(f"{sys.executable} -m advlib profiles | head -1", shell=True, capture_output=True,
                          text=True, cwd=REPO)
    assert proc.stdout.strip() == "smoke" and proc.stderr == "", proc.stderr
    proc = subprocess.run([sys.executable, "-m", "advlib", "profiles", "cpu"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.splitlines()[0] == "cpu" and "\nsmoke" not in proc.stdout
    assert "    sources\n      standard   epochs=100 " in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "advlib.dist", "train", "--profile", "smoke", "-p", "sets.rnr.epochs",
                           "x"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and "sets.rnr.epochs" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.browser
def test_report_html_is_written_and_opens_in_a_real_browser(smoke_run, tmp_path):
    """`python -m advlib run` writes <run>/report.html from the executed report notebook: the claims with
    their verdicts and the figures embedded, no code cells; Chromium opens it and draws it."""
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    out, _ = smoke_run
    html = (out / "report.html").read_text()
    assert "The paper&#39;s claims, tested" in html or "The paper's claims, tested" in html
    assert "Inconclusive at this scale" in html and "data:image/png;base64" in html
    assert "import advlib.steps.report as step" not in html, "code cells are left out by default"
    chromium = Path("/usr/bin/chromium")
    if not chromium.is_file():
        pytest.fail("Debian's chromium is missing: run bash tools/browser_deps.sh")
    shot = tmp_path / "report.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium),
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto((out / "report.html").as_uri())
            page.wait_for_selector("text=The paper's claims, tested", timeout=30_000)
            assert page.locator("img").count() >= 1
            assert page.evaluate("() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 20_000
    # `python -m advlib report <run>` rebuilds it
    (out / "report.html").unlink()
    proc = subprocess.run([sys.executable, "-m", "advlib", "report", str(out)], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 0 and (out / "report.html").read_text() == html, proc.stderr
