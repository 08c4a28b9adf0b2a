"""benchmarks/gpu_run.sh, the one prepared GPU run: valid bash that calls modules and options that
exist, budgets that fit the device's limits, and the whole script end to end on the CPU at smoke
size (the data through the same packed archive the device unpacks), checked on the files it writes:
every stage's JSON, a row per set and per matched control with clean / robust accuracy and masks
that ``advlib.verdicts.claims`` and ``advlib.tables.render`` read, the PGD ratio, at most 8 files
and no machine's absolute path in any of them; a run cut short still reports."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import REPO

from advlib import config
from advlib.evaluate import unpack_mask

SCRIPT = REPO / "benchmarks" / "gpu_run.sh"
SAMPLE_ZIP = REPO / "advlib" / "sample" / "cifar10-sample.zip"
STAGE_FILES = {"machine": "machine.json", "bench_pgd": "bench_pgd.json", "bench_construct": "bench_construct.json",
               "fast_pipeline": "pipeline.json"}
MAX_FILES = 8  # what the device tool brings back from $OUT
TRAVEL_BYTES = 64 * 2**20  # the working tree that travels with a device run, carried paths included
PACKED_CIFAR_BYTES = 18_568_264  # pack_cifar's tar.xz of the shared cifar10-jpeg.zip (measured)
DEVICE_TIMEOUT_S = 600  # one command's limit on the device
SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def _pack(src: Path, dst: Path) -> Path:
    subprocess.run([sys.executable, "-m", "benchmarks.pack_cifar", "pack", str(src), str(dst)], cwd=REPO,
                   check=True, capture_output=True, text=True)
    return dst


PROBE = "gpu_run_probe"  # a wheel of our own: the device installs .gpu/whl/*.whl as it would torchattacks'


def _probe_wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel (what ``pip download`` saves), for the script's install step."""
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    info = f"{PROBE}-0.1.dist-info"
    files = {f"{PROBE}/__init__.py": "VERSION = '0.1'\n",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {PROBE.replace('_', '-')}\nVersion: 0.1\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{n},,\n" for n in files) + f"{info}/RECORD,,\n"
    path = folder / f"{PROBE}-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def _run_script(tmp: Path, **env) -> tuple[subprocess.CompletedProcess, Path]:
    assets = tmp / "assets"
    if not (assets / "cifar10-jpeg.tar.xz").is_file():
        _pack(SAMPLE_ZIP, assets / "cifar10-jpeg.tar.xz")  # the device's data path, on the embedded sample
        _probe_wheel(assets / "whl")
        (assets / "commit").write_text("0123abc+dirty\n")  # what the session writes (its device copy has no .git)
    out = tmp / "out"
    full_env = {**os.environ, "GPU_RUN_PROFILE": "smoke", "GPU_RUN_DEVICE": "cpu", "GPU_RUN_ASSETS": str(assets),
                "GPU_RUN_WORK": str(tmp / "work"), "GPU_RUN_PYTHON": sys.executable, "OUT": str(out), **env}
    proc = subprocess.run(["bash", str(SCRIPT)], cwd=tmp, env=full_env, capture_output=True, text=True, timeout=600)
    return proc, out


def _default(name: str, branch: str | None = None) -> str:
    """A knob's default in the script: ``NAME=${GPU_RUN_...:-VALUE}`` (in the smoke or the GPU branch)."""
    text = SCRIPT.read_text()
    if branch is not None:
        smoke, gpu = text.split('if [ "$PROFILE" = smoke ]; then', 1)[1].split("else", 1)
        text = smoke if branch == "smoke" else gpu.split("fi", 1)[0]
    m = re.search(rf'^\s*{name}=(?:"([^"]*)"|\$\{{\w+:-([^}}]*)\}}|(\S+))', text, re.M)
    assert m, f"{name} not set in {SCRIPT.name}"
    return next(g for g in m.groups() if g is not None)


# --- the script as text ---------------------------------------------------------------------------
def test_script_is_valid_bash():
    proc = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_module_and_option_it_calls_exists():
    text = SCRIPT.read_text()
    modules = set(re.findall(r"-m (benchmarks\.\w+)", text)) | set(re.findall(r"from (benchmarks\.\w+) import", text))
    assert {"benchmarks.bench_pgd", "benchmarks.bench_construct", "benchmarks.fast_pipeline",
            "benchmarks.pack_cifar"} <= modules
    for mod in sorted(modules):
        assert importlib.util.find_spec(mod) is not None, f"{SCRIPT.name} calls {mod}, which does not exist"
    # every --option the script hands a module, on the GPU as on the CPU, is one the module declares
    calls = {"benchmarks.bench_pgd": _default("PGD_ARGS", "gpu") + " " + _default("PGD_ARGS", "smoke"),
             "benchmarks.bench_construct": _default("CONSTRUCT_ARGS", "gpu") + " " + _default("CONSTRUCT_ARGS", "smoke")}
    for mod in modules:  # and the options written on its own call lines
        for line in re.findall(rf"-m {re.escape(mod)}\b(.*(?:\\\n.*)*)", text):
            calls[mod] = calls.get(mod, "") + " " + line
    shared = (REPO / "benchmarks" / "_common.py").read_text()  # the lever scripts' shared parser
    for mod, args in calls.items():
        source = Path(importlib.util.find_spec(mod).origin).read_text() + shared
        for opt in set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", args)):
            assert f'"{opt}"' in source, f"{SCRIPT.name} passes {opt} to {mod}, which has no such option"


def test_budgets_fit_one_device_command_and_the_header_names_the_call():
    text = SCRIPT.read_text()
    call = re.search(r"run\(command=\"bash benchmarks/gpu_run.sh\", carry=\[\"\.gpu\"\], timeout_s=(\d+)\)", text)
    assert call, "the header must give the exact device call"
    timeout_s = int(call.group(1))
    assert timeout_s <= DEVICE_TIMEOUT_S
    total = int(_default("TOTAL_S"))
    fixed = int(_default("FACTS_S")) + int(_default("PGD_S")) + int(_default("CONSTRUCT_S", "gpu")) + int(_default("END_S"))
    assert total + 20 <= timeout_s, "the script's own deadline must end inside the command's limit"
    assert total - fixed >= 300, f"the pipeline would get only {total - fixed} s of {total}"


def test_what_travels_fits_the_device_limit():
    try:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    tracked = sum((REPO / f).stat().st_size for f in files.decode().split("\0") if f and (REPO / f).is_file())
    wheel = 200_000  # torchattacks-3.3.0-py3-none-any.whl: 156 kB
    assert tracked + PACKED_CIFAR_BYTES + wheel < TRAVEL_BYTES, (
        f"tracked files ({tracked:,} B) + the packed CIFAR-10 + the wheel exceed the 64 MiB a device run carries")
    assert "/.gpu/" in (REPO / ".gitignore").read_text().split(), ".gpu/ must be ignored (it travels by carry)"


# --- the packed data ------------------------------------------------------------------------------
def test_pack_cifar_round_trip_gives_the_same_zip_and_refuses_a_damaged_archive(tmp_path):
    from benchmarks import pack_cifar

    packed = pack_cifar.pack(SAMPLE_ZIP, tmp_path / "c.tar.xz")
    assert packed["members"] == 800 and packed["archive_bytes"] < SAMPLE_ZIP.stat().st_size
    back = pack_cifar.unpack(tmp_path / "c.tar.xz", tmp_path / "c.zip")
    assert back["identical_to_source"] and back["digest"] == packed["digest"]
    assert pack_cifar.file_sha256(tmp_path / "c.zip") == pack_cifar.file_sha256(SAMPLE_ZIP)
    # one member's bytes changed: the digest no longer matches the manifest, and no zip is left behind
    with tarfile.open(tmp_path / "c.tar.xz", "r:xz") as src, tarfile.open(tmp_path / "bad.tar.xz", "w:xz") as dst:
        for i, m in enumerate(src):
            data = src.extractfile(m).read()
            if i == 5:
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(m, io.BytesIO(data))
    with pytest.raises(ValueError, match="damaged"):
        pack_cifar.unpack(tmp_path / "bad.tar.xz", tmp_path / "bad.zip")
    assert not (tmp_path / "bad.zip").exists() and not (tmp_path / "bad.zip.part").exists()


# --- the script end to end ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu_run")
    proc, out = _run_script(tmp)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp, out, proc


def _json(out: Path, name: str) -> dict:
    path = out / name
    assert path.is_file(), f"{name} missing from $OUT: {sorted(p.name for p in out.iterdir())}"
    return json.loads(path.read_text())


@pytest.mark.slow
def test_every_stage_wrote_its_json_and_run_json_records_each(smoke_run):
    _, out, _ = smoke_run
    run = _json(out, "run.json")
    assert [s["stage"] for s in run["stages"]] == list(STAGE_FILES)
    assert all(s["ok"] and not s["timed_out"] and s["seconds"] <= s["budget_s"] for s in run["stages"])
    for name in [*STAGE_FILES.values(), "results.json"]:
        assert isinstance(_json(out, name), dict)
    machine = _json(out, "machine.json")
    assert machine["cifar"]["identical_to_source"] and machine["torch"] and machine["torchattacks"] == "3.3.0"
    assert machine["commit"] == run["commit"] == "0123abc+dirty"
    tmp, _, _ = smoke_run
    assert (tmp / "work" / "site" / PROBE / "__init__.py").is_file(), "the wheels in .gpu/whl were not installed"


@pytest.mark.slow
def test_the_pipeline_reports_every_set_and_its_matched_control_with_masks(smoke_run):
    _, out, _ = smoke_run
    report = _json(out, "pipeline.json")
    assert report["complete"] and set(report["total_includes"]) <= set(report["stages_done"])
    results = report["results"]
    assert results == _json(out, "results.json")
    assert results["profile"] == "smoke" and results["config"]["eval_eps"] == 0.25
    rows = {(r["dataset"], r.get("origin", r.get("source"))): r for r in results["rows"]}
    want = [("standard", "cifar10"), *[(d, "constructed") for d in config.DATASETS],
            *[(c, "cifar10") for c in config.MATCHED_CONTROLS]]
    for key in want:
        assert key in rows, f"no row {key}: {sorted(rows)}"
        r = rows[key]
        n = r["clean_n"]
        clean, robust = unpack_mask(r["masks"]["clean"], n), unpack_mask(r["masks"]["0.25"], n)
        assert r["clean_acc"] == int(clean.sum()) / n and r["robust_acc"]["0.25"] == int(robust.sum()) / n
        assert not (robust & ~clean).any(), f"{key}: robust on an image it gets wrong clean"
        assert r["seed"] == 0 and r["attack"] == "worst"
    for d in config.DATASETS:  # each set names its control, trained on as many real images as the set has rows
        assert rows[(d, "constructed")]["control"] == config.MATCHED_CONTROL[d]
        built = next(c["n_rows"] for c in report["construction"] if c["dataset"] == d)
        assert report["n_control_images"][config.MATCHED_CONTROL[d]] == built
    tta = report["time_to_accuracy"]["standard"]
    assert len(tta["acc_per_epoch"]) == tta["epochs"] == results["config"]["sources"]["standard"]["epochs"]
    assert tta["eval_seconds_per_epoch"] > 0 and tta["target"] == 0.93
    th = report["throughput"]
    assert th["fraction_of_fwd_bwd"] > 0 and th["fwd_bwd_input_img_per_s"] > 0
    assert len(report["goals"]) == 13 and any(g["met"] is not None for g in report["goals"])


@pytest.mark.slow
def test_claims_and_the_table_read_the_results(smoke_run):
    from advlib import tables, verdicts

    _, out, _ = smoke_run
    results = _json(out, "results.json")
    found = verdicts.claims(results)
    ids = {c["id"] for c in found}
    assert {"standard_non_robust", "d_robust_vs_control@0.25", "d_non_robust_vs_control@0.25",
            "d_rand_generalizes", "d_det_generalizes"} <= ids
    assert all(c["verdict"] in verdicts.VERDICTS for c in found)
    assert [c["id"] for c in _json(out, "pipeline.json")["claims"]] == [c["id"] for c in found]
    text = tables.render(results)
    assert "matched control of D_R / D_NR" in text and "D_det (adv. to class y+1)" in text
    proc = subprocess.run([sys.executable, "-m", "advlib", "table", str(out / "results.json")], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == text


@pytest.mark.slow
def test_bench_pgd_and_bench_construct_wrote_their_ratios(smoke_run):
    _, out, _ = smoke_run
    pgd = _json(out, "bench_pgd.json")
    assert pgd["speed_ratio"] > 0 and pgd["final_check"].startswith("float32")
    assert [v["variant"] for v in pgd["variants"]] == ["fp32", "bf16-stop"]
    assert all(v["speed_ratio"] > 0 and isinstance(v["at_least_as_strong"], bool) for v in pgd["variants"])
    rows = _json(out, "bench_construct.json")["rows"]
    assert {r["task"] for r in rows} == {"invert", "targeted_pgd"} and all(r["fraction_of_fwd_bwd"] > 0 for r in rows)


@pytest.mark.slow
def test_out_holds_few_files_with_safe_names_and_no_machine_paths(smoke_run):
    tmp, out, proc = smoke_run
    files = [p for p in out.rglob("*") if p.is_file()]
    assert 0 < len(files) <= MAX_FILES, [p.name for p in files]
    assert all(SAFE_NAME.match(p.name) and p.parent == out for p in files)
    roots = {str(REPO), str(tmp), str(Path.home()), sys.prefix, sys.base_prefix, str(Path(tmp).resolve())} - {"/"}
    generic = re.compile(r"(?<![\w<>.~-])/(?:tmp|work|home|root|opt|usr|var|mnt|srv|data|scratch)/")
    for p in files:
        text = p.read_text()
        for root in roots:
            assert root not in text, f"{p.name} holds the machine path {root}"
        hit = generic.search(text)
        assert hit is None, f"{p.name} holds an absolute path: ...{text[max(0, hit.start() - 40):hit.end() + 40]}..."
    assert "fast_pipeline, profile smoke, complete" in proc.stdout  # the reply's tail shows the summary


@pytest.mark.slow
def test_a_run_cut_short_still_reports(tmp_path):
    proc, out = _run_script(tmp_path, GPU_RUN_PGD_S="0", GPU_RUN_CONSTRUCT_S="0", GPU_RUN_PIPELINE_S="10",
                            GPU_RUN_PARAMS="epochs 100")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = _json(out, "run.json")
    assert [s["stage"] for s in run["stages"]] == ["machine", "fast_pipeline"]
    cut = run["stages"][-1]
    assert cut["timed_out"] and not cut["ok"]
    report = _json(out, "pipeline.json")
    assert not report["complete"] and "load_data" in report["stages_done"]
    assert "fast_pipeline: exit status 124 (timed out)" in proc.stdout
    assert "NOT complete" in proc.stdout
