"""The benchmark scripts: each renders its committed JSON, the shared parser and setup validate before
any work and measure on the validation split by default, one machine record, no sys.path hacks,
and none imports the orchestration modules being dissolved (pipeline, studies, narrate)."""

from __future__ import annotations

import argparse
import ast
import importlib
import json

import pytest
from conftest import REPO

from benchmarks import _common

RESULTS = REPO / "benchmarks" / "results"
# committed JSON (by name prefix) -> the script that wrote it and renders it
RENDERED = {"cpu_levers": "cpu_levers", "invert_schedule": "invert_schedule", "set_train_levers": "set_train_levers",
            "target_source": "target_source", "ddet_search": "ddet_search", "bench_eval": "bench_eval",
            "bench_pgd": "bench_pgd", "construct_": "bench_construct", "attack_budget": "attack_budget"}
COMMITTED = sorted((f, script) for f in RESULTS.glob("*.json") for prefix, script in RENDERED.items()
                   if f.name.startswith(prefix))
SCRIPTS = sorted(p for p in (REPO / "benchmarks").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path, script", COMMITTED, ids=[f.name for f, _ in COMMITTED])
def test_each_benchmark_renders_its_committed_json(path, script):
    data = json.loads(path.read_text())
    out = importlib.import_module(f"benchmarks.{script}").render(data)
    lines = out.splitlines()
    assert out.endswith("\n") and lines[0].startswith("| ") and set(lines[1]) <= set("|-")
    table = [ln for ln in lines if ln.startswith("| ")]
    if script == "bench_pgd":
        assert len(table) == 3 and "`advlib.pgd`" in out and "load average" in out
    else:  # a row per row of the file (target_source: per set of each row)
        n = sum(len(r["sets"]) for r in data["rows"]) if script == "target_source" else len(data["rows"])
        assert len(table) == 1 + n, f"{path.name}: {len(table) - 1} table rows for {n} rows"
    assert "None" not in out and "nan" not in out


def test_every_script_that_has_a_readme_block_has_a_committed_json():
    assert {s for _, s in COMMITTED} == set(RENDERED.values())


def _parse(argv, **kw):
    ap = argparse.ArgumentParser()
    _common.add_run_args(ap, **kw)
    return ap.parse_args(argv)


@pytest.fixture
def no_data(monkeypatch):
    """Fail the test if CIFAR-10 is loaded (validation must come before any work)."""
    def boom(*a, **k):
        raise AssertionError("data loaded before the arguments were validated")

    monkeypatch.setattr(_common.data, "load_cifar10", boom)


@pytest.mark.parametrize("param, field", [(["-p", "epochz", "3"], "epochz"),
                                          (["-p", "sources.standard.epochs", "three"], "sources.standard.epochs"),
                                          (["-p", "arch", "nope"], "arch")])
def test_setup_fails_before_any_work_naming_the_bad_profile_field(tmp_path, no_data, param, field):
    args = _parse(["--run-dir", str(tmp_path), "--profile", "smoke", "--cifar", "sample", *param, "--out", "x.json"])
    with pytest.raises(SystemExit, match=field):
        _common.setup(args)


def test_add_run_args_declares_the_shared_arguments(tmp_path):
    args = _parse(["--run-dir", str(tmp_path), "--setting", "a=1", "--setting", "b=2"], setting="a=..", out="o.json")
    assert (args.profile, args.cifar, args.split, args.n_val, args.out) == ("cpu", None, "val", 2000, "o.json")
    assert args.setting == ["a=1", "b=2"]
    with pytest.raises(SystemExit):  # --run-dir is required by default
        _parse(["--out", "o.json"])
    with pytest.raises(SystemExit):  # so is --out without a default
        _parse(["--run-dir", str(tmp_path)])
    with pytest.raises(SystemExit):  # --split is val or test
        _parse(["--run-dir", str(tmp_path), "--out", "o", "--split", "train"])
    assert _parse(["--out", "o"], run_dir=False).run_dir is None
    assert not hasattr(_parse(["--run-dir", "r"], split=False, out=""), "split")


def test_setup_loads_the_profiles_splits_lazily_and_measures_on_validation(tmp_path):
    args = _parse(["--run-dir", str(tmp_path), "--profile", "smoke", "--cifar", "sample", "-p", "eval_n", "50",
                   "--out", "x.json"])
    bench = _common.setup(args)
    assert bench.cfg.name == "smoke" and bench.cfg.eval_n == 50 and bench.cfg.cifar_source == "sample"
    assert bench.paths.root == tmp_path.resolve() and bench.device.type in ("cpu", "cuda")
    assert bench.split == "val" and bench.n_val == bench.cfg.n_val == 100 and not bench._data  # nothing loaded yet
    xv, yv = bench.eval_split
    assert len(yv) == 100 and set(bench._data) == {"val"}
    x, y = bench.train  # smoke trains on every sample training image but the validation ones
    assert len(y) + len(yv) == 600
    rec = bench.record(rows=[])
    assert rec["split"] == "val" and rec["profile"] == "smoke" and rec["cifar"] == "sample" and rec["rows"] == []
    assert not rec["run_dir"].startswith("/") and {"device", "threads", "load_avg", "commit"} <= set(rec["machine"])
    test = _common.setup(_parse(["--run-dir", str(tmp_path), "--profile", "smoke", "--cifar", "sample",
                                 "--split", "test", "--out", "x.json"]))
    assert test.split == "test" and len(test.eval_split[1]) == 200 and test.record()["split"] == "test"


def test_setup_holds_out_n_val_when_the_profile_has_none(tmp_path, no_data):
    base = ["--run-dir", str(tmp_path), "--cifar", "sample", "--out", "x.json"]
    assert _common.setup(_parse(base)).n_val == 2000  # the cpu profile's own
    assert _common.setup(_parse([*base, "--n-val", "300"])).n_val == 2000  # the profile's wins
    none = [*base, "-p", "n_val", "0"]
    assert _common.setup(_parse(none)).n_val == 2000  # the default when the profile holds out none
    assert _common.setup(_parse([*none, "--n-val", "300"])).n_val == 300
    # a run that trained on every training image has no validation images left
    fast = _parse([*base, "--profile", "fast", "-p", "device", "cpu"])
    assert _common.setup(fast).n_val == 2000
    with pytest.raises(SystemExit, match="holds out none"):
        _common.setup(fast, reads_run=True)


def test_lever_scripts_validate_profile_and_settings_before_any_work(tmp_path, no_data):
    from benchmarks import ddet_search, set_train_levers

    common = ["--run-dir", str(tmp_path), "--profile", "smoke", "--cifar", "sample", "--out", str(tmp_path / "o.json")]
    with pytest.raises(SystemExit, match="epochz"):
        set_train_levers.main([*common, "-p", "epochz", "1", "--setting", "epochs=1"])
    with pytest.raises(SystemExit, match="unknown key 'epoch'"):
        set_train_levers.main([*common, "--setting", "epoch=1"])
    with pytest.raises(SystemExit, match="steps='many': expected int"):
        ddet_search.main([*common, "--setting", "eps=1.0,steps=many"])
    with pytest.raises(SystemExit, match="d_det is not in"):  # an empty run directory
        set_train_levers.main([*common, "--setting", "epochs=1"])
    assert not (tmp_path / "o.json").exists()


def test_resume_refuses_a_file_measured_on_another_split(tmp_path, no_data):
    bench = _common.setup(_parse(["--run-dir", str(tmp_path), "--cifar", "sample", "--out", "x"]))
    out = tmp_path / "levers.json"
    assert _common.resume(out, bench) == {}
    out.write_text(json.dumps({"rows": [1]}))  # written before --split: the test set
    with pytest.raises(SystemExit, match="measured on the test split"):
        _common.resume(out, bench)
    out.write_text(json.dumps({"split": "validation: 2000 images", "levers": {}}))  # rnr_control's older note
    assert _common.resume(out, bench) == {"split": "validation: 2000 images", "levers": {}}


def test_portable_never_returns_a_machines_absolute_path(tmp_path):
    p = _common.portable
    assert p(None) is None and p("sample") == "sample" and p("torchvision") == "torchvision"
    assert p("runs/cpu") == "runs/cpu" and p(REPO / "benchmarks" / "results" / "x.json") == "benchmarks/results/x.json"
    assert p(tmp_path / "cifar10-jpeg.zip") == "outside the repository: cifar10-jpeg.zip"
    assert p("/work/shared/data/cifar10-jpeg.zip") == "outside the repository: cifar10-jpeg.zip"


def test_machine_record_is_the_one_machine_record():
    from advlib.utils import machine_record

    m = machine_record("cpu")
    assert {"device", "torch", "threads", "cpus", "python", "platform", "os", "commit"} <= set(m)
    assert len(m.get("load_avg", [0, 0, 0])) == 3
    assert not hasattr(_common, "machine_info")
    assert _common.threads({"threads": 2}) == 2 and _common.threads({"torch_threads": 1}) == 1
    assert _common.load_avg({"load_avg": [2.01, 1.86, 1.82]}) == "2.0, 1.9, 1.8" and _common.load_avg({}) == "?"


@pytest.mark.parametrize("path", SCRIPTS + sorted((REPO / "tools").glob("*.py")), ids=lambda p: p.name)
def test_no_sys_path_hacks_and_no_dissolved_modules(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", None) == "sys":
            raise AssertionError(f"{path.name}:{node.lineno}: sys.path (run it as python -m <package>.<name>)")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            bad = [n for n in names if n in ("advlib.pipeline", "advlib.studies", "advlib.narrate")]
            assert not bad, f"{path.name}:{node.lineno} imports {bad}"


def test_attack_budget_measures_each_budget_against_pgd_on_validation(tmp_path):
    """The headline at each APGD-T budget is the per-image worst case with PGD: never above PGD-20
    alone nor above clean accuracy; a bad budget fails before any model is loaded."""
    from conftest import synthetic

    from advlib import config, train
    from benchmarks import attack_budget

    x, y = synthetic(64, seed=3)
    tcfg = train.train_config(config.get_profile("smoke"), "standard")
    train.train_or_load(tcfg, x, y, tmp_path / "model", progress=False)
    out = tmp_path / "budget.json"
    base = ["--profile", "smoke", "--cifar", "sample", "--model", str(tmp_path / "model"), "--eps", "0.25,1.0",
            "--n", "40", "--out", str(out)]
    with pytest.raises(ValueError):
        attack_budget.main([*base, "--budget", "3by50"])
    assert not out.exists()
    assert attack_budget.main([*base, "--budget", "1x3", "--budget", "2x5"]) == 0
    data = json.loads(out.read_text())
    assert data["split"] == "val" and data["n"] == 40 and data["budgets"] == ["1x3", "2x5"]
    assert [r["eps"] for r in data["rows"]] == [0.25, 1.0]
    for r in data["rows"]:
        for b in data["budgets"]:
            assert r["worst"][b]["acc"] <= r["pgd"]["acc"] <= r["clean"]
    table = [ln for ln in attack_budget.render(data).splitlines() if ln.startswith("| ")]
    assert len(table) == 1 + len(data["rows"]) and "PGD + APGD-T 2x5" in table[0]
