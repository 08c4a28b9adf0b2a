"""advlib.dist: a 2-process gloo run (torchrun, CPU) gives the single-process results.

One torchrun launch runs this file as its worker (``_worker`` below): DDP training (uninterrupted,
killed + resumed, adversarial), sharded construction (with a partial build first), sharded clean
and robust accuracy, and the ``advlib.dist`` command line on a tiny smoke profile. The tests
then recompute each piece in this single process and compare:

- DDP weights == single-process weights up to float rounding (atol 1e-5), both ranks equal;
- constructed sets bitwise equal (torch.equal) and the same meta;
- accuracy / robust accuracy exactly equal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import synthetic

from advlib import dist
from advlib.config import get_profile
from advlib.construct import construct_dataset
from advlib.data import load_feature_dataset
from advlib.dist.__main__ import main as dist_main
from advlib.evaluate import accuracy, robust_accuracy
from advlib.models import build_model
from advlib.train import TrainConfig, fit, load_trained

REPO = Path(__file__).resolve().parents[1]
WORLD = 2
# 96 images, global batch 33 -> slices of 17 and 16 (unequal on purpose), 2 steps an epoch.
# NCHW: with channels_last the CPU convolutions round differently for 17 and 33 images, and on the
# zero borders of crops exactly tied max-pool inputs then route gradients elsewhere: 1e-5 apart
# after one step. Any change of summation order grows like that (1 vs 2 threads in one process:
# 2e-4 after 18 steps), so the comparison is kept to 6 steps.
CFG = TrainConfig(arch="tiny", epochs=3, batch_size=33, lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True,
                  schedule="onecycle", label_smoothing=0.1, augment="crop,flip", channels_last=False, seed=4)
ADV_CFG = TrainConfig(arch="tiny", epochs=1, batch_size=32, lr=0.05, schedule="constant", augment="flip",
                      adversarial=True, adv_eps=0.5, adv_steps=2, adv_step_size=0.25, seed=1)
# 24 images in shards of 5: shards 0, 2, 4 on rank 0 and 1, 3 on rank 1
PROFILE = dict(construct_n=24, shard_size=5, construct_batch=4, invert_steps=6, invert_step_size=0.2,
               target_eps=1.0, target_steps=4, target_step_size=0.3, target_restarts=2, seed=3)
SETS = ("d_rand", "d_robust")
EVAL = dict(eps=0.5, steps=3, batch_size=10)  # 45 test images -> 5 batches: 3 on rank 0, 2 on rank 1
CLI_PARAMS = {"n_train": 60, "n_test": 30, "batch_size": 20, "sources.standard.epochs": 1, "sources.robust.epochs": 1,
              "sources.robust.adv_steps": 1, "construct_n": 20, "shard_size": 10, "construct_batch": 10,
              "invert_steps": 2, "target_steps": 2, "datasets": "d_rand,d_robust", "eval_n": 20, "eval_steps": 2,
              "eval_sweep": "0,0.25", "eval_batch": 10, "device": "cpu"}  # smoke's sets train 1 epoch




def fresh(seed: int = 0):
    torch.manual_seed(seed)
    return build_model("tiny")


# --- the worker (runs under torchrun, one process per rank) ---------------------------------------------
def _worker(out: Path) -> None:
    torch.set_num_threads(1)
    assert dist.init_from_env(), "expected to run under torchrun"
    r = dist.rank()
    x, y = synthetic(96, 1)
    xt, yt = synthetic(45, 2)
    report: dict = {"world": dist.world_size()}

    model = fresh(0)
    report["history"] = fit(model, x, y, CFG, out_dir=out / "train", eval_data=(xt, yt), progress=False)
    torch.save(model.state_dict(), out / f"train_rank{r}.pt")
    assert all(type(m) is not dist.GlobalBatchNorm2d for m in model.modules()), "BatchNorm not restored"

    fit(fresh(0), x, y, CFG, out_dir=out / "resumed", progress=False, stop_after=1)  # "killed" after epoch 1
    resumed = fresh(99)  # a new process would build a differently initialized model
    report["history_resumed"] = fit(resumed, x, y, CFG, out_dir=out / "resumed", progress=False)
    torch.save(resumed.state_dict(), out / f"resumed_rank{r}.pt")

    adv = fresh(0)
    report["history_adv"] = fit(adv, x, y, ADV_CFG, progress=False)
    torch.save(adv.state_dict(), out / f"adv_rank{r}.pt")

    prof = get_profile("smoke", **PROFILE)
    report["partial"] = construct_dataset("d_rand", model=model, images=x, labels=y, profile=prof,
                                          out_dir=out / "d_rand", progress=False, max_shards=1)
    report["meta"] = {name: construct_dataset(name, model=model, images=x, labels=y, profile=prof,
                                              out_dir=out / name, progress=False) for name in SETS}

    report["acc"] = accuracy(model, xt, yt, batch_size=EVAL["batch_size"])
    report["robust"] = robust_accuracy(model, xt, yt, **EVAL)
    report["per_rank"] = dist.all_gather_object([report["acc"], report["robust"], report["meta"]])
    report["gathered"] = [t.tolist() for t in dist.all_gather_tensors(torch.arange(r + 2) * 10)]
    report["broadcast"] = dist.broadcast_object({"from": r})
    if r == 0:
        (out / "report.json").write_text(json.dumps(report))

    # the command line, as `torchrun -m advlib.dist all ...` runs it (main() leaves the group at the end)
    argv = ["all", "--profile", "smoke", "--out", str(out / "cli")]
    for k, v in CLI_PARAMS.items():
        argv += ["-p", k, str(v)]
    dist_main(argv)
    assert not dist.is_initialized()


def _torchrun(*args, timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}", *args]
    return subprocess.run(cmd, cwd=REPO, env={**env, "CUDA_VISIBLE_DEVICES": ""}, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    proc = _torchrun(__file__, "worker", str(out))
    if proc.returncode != 0:
        pytest.fail(f"torchrun failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return out, json.loads((out / "report.json").read_text()), proc




def _assert_close_state(a: dict, b: dict, atol=1e-5):
    assert a.keys() == b.keys()
    for k in a:
        if a[k].dtype == torch.long:
            assert torch.equal(a[k], b[k]), k
        else:
            torch.testing.assert_close(a[k], b[k], atol=atol, rtol=1e-4, msg=lambda m, k=k: f"{k}: {m}")


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


# --- tests ---------------------------------------------------------------------------------------------------
def test_ddp_training_matches_single_process(ddp_run, tmp_path):
    out, report, _ = ddp_run
    assert report["world"] == WORLD
    x, y = synthetic(96, 1)
    xt, yt = synthetic(45, 2)
    single = fresh(0)
    hist = fit(single, x, y, CFG, out_dir=tmp_path, eval_data=(xt, yt), progress=False)
    ref = single.state_dict()
    rank0, rank1 = _load(out / "train_rank0.pt"), _load(out / "train_rank1.pt")
    for k in rank0:  # the ranks hold the very same weights and BatchNorm statistics
        assert torch.equal(rank0[k], rank1[k]), k
    _assert_close_state(ref, rank0)
    # rank 0 wrote the checkpoint, and it is the trained model
    _assert_close_state(ref, load_trained(out / "train", device="cpu").state_dict())
    ddp_hist = report["history"]
    assert ddp_hist["epoch"] == hist["epoch"] == [1, 2, 3]
    assert ddp_hist["lr"] == pytest.approx(hist["lr"])
    assert ddp_hist["loss"] == pytest.approx(hist["loss"], abs=1e-5)
    assert ddp_hist["train_acc"] == pytest.approx(hist["train_acc"], abs=1.5 / 64)  # at most a tie flips
    assert ddp_hist["eval_acc"] == pytest.approx(hist["eval_acc"], abs=1.5 / 45)
    assert json.loads((out / "train" / "history.json").read_text()) == ddp_hist


def test_ddp_resume_after_kill(ddp_run):
    out, report, _ = ddp_run
    full, resumed = _load(out / "train_rank0.pt"), _load(out / "resumed_rank0.pt")
    _assert_close_state(full, resumed, atol=1e-6)
    _assert_close_state(resumed, _load(out / "resumed_rank1.pt"), atol=0)
    assert report["history_resumed"]["loss"] == pytest.approx(report["history"]["loss"], abs=1e-6)


def test_ddp_adversarial_training_stays_in_sync(ddp_run):
    out, report, _ = ddp_run
    a, b = _load(out / "adv_rank0.pt"), _load(out / "adv_rank1.pt")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert not torch.equal(a["head.weight"], fresh(0).state_dict()["head.weight"])
    h = report["history_adv"]
    assert h["epoch"] == [1] and 0 < h["loss"][0] < 10 and all(torch.isfinite(v).all() for v in a.values())


@pytest.mark.parametrize("name", SETS)
def test_sharded_construction_equals_single_process(ddp_run, tmp_path, name):
    out, report, _ = ddp_run
    if name == "d_rand":  # max_shards=1 on each rank: 2 of 5 shards, then the build was resumed
        assert report["partial"]["complete"] is False
        assert (report["partial"]["shards_done"], report["partial"]["shards_total"]) == (WORLD, 5)
    model = load_trained(out / "train", device="cpu")
    x, y = synthetic(96, 1)
    meta = construct_dataset(name, model=model, images=x, labels=y, profile=get_profile("smoke", **PROFILE),
                             out_dir=tmp_path, progress=False)
    a, b = load_feature_dataset(out / name), load_feature_dataset(tmp_path)
    # the same bytes in every tensor (the files themselves differ even between two single-process
    # builds: torch.save names its zip records after the temporary file that atomic writes use)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    ddp_meta = report["meta"][name]
    assert ddp_meta["built_with"]["processes"] == WORLD and meta["built_with"]["processes"] == 1
    skip = {"seconds", "images_per_second", "built_with"}
    assert {k: v for k, v in ddp_meta.items() if k not in skip} == \
        json.loads(json.dumps({k: v for k, v in meta.items() if k not in skip}))
    assert report["per_rank"][1][2][name] == ddp_meta  # every rank returned the same meta
    assert not (out / name / "shards").exists()


def test_sharded_evaluation_equals_single_process(ddp_run):
    out, report, _ = ddp_run
    model = load_trained(out / "train", device="cpu")
    xt, yt = synthetic(45, 2)
    assert report["acc"] == accuracy(model, xt, yt, batch_size=EVAL["batch_size"])
    assert report["robust"] == robust_accuracy(model, xt, yt, **EVAL)
    assert report["per_rank"][0][:2] == report["per_rank"][1][:2] == [report["acc"], report["robust"]]
    assert report["robust"] < report["acc"]


def test_cli_all_under_torchrun(ddp_run):
    out, _, proc = ddp_run
    cli = out / "cli"
    for folder in ("cifar10/standard", "cifar10/robust", "constructed/d_rand", "constructed/d_robust"):
        assert (cli / "models" / folder / "checkpoint.pt").is_file(), folder
    for name in ("d_rand", "d_robust"):
        meta = json.loads((cli / "datasets" / "constructed" / name / "meta.json").read_text())
        assert meta["complete"] and meta["n_rows"] == 20 and meta["built_with"]["processes"] == WORLD
    results = json.loads((cli / "results.json").read_text())
    # each set beside its matched control (notebook 04 trains them with the set's recipe)
    assert {r["dataset"] for r in results["rows"]} == {"standard", "adversarial", "d_rand", "d_robust", "control_rand",
                                                      "control_rnr"}
    assert "2 process(es)" in proc.stdout and "| D_rand" in proc.stdout


def test_collective_helpers(ddp_run):
    _, report, _ = ddp_run
    assert report["gathered"] == [[0, 10], [0, 10, 20]]  # unequal lengths come back whole
    assert report["broadcast"] == {"from": 0}


# --- the package: helpers below, command line on top ----------------------------------------------------
def test_helpers_import_without_the_command_line():
    # `import advlib.dist` (what train/evaluate/construct do) loads no notebook step; the command line
    # is advlib/dist/__main__.py, so `python -m advlib.dist` still runs it
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = "import sys, advlib.dist; print(sorted(m for m in sys.modules if m.startswith('advlib')))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['advlib', 'advlib.dist']"
    proc = subprocess.run([sys.executable, "-m", "advlib.dist", "--help"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "-m advlib.dist" in proc.stdout and "{sources,construct,train,evaluate,all}" in proc.stdout


# --- single-process behaviour of the helpers ---------------------------------------------------------------
def test_single_process_helpers_are_no_ops(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert dist.init_from_env() is False
    assert (dist.rank(), dist.world_size(), dist.is_main()) == (0, 1, True)
    dist.barrier()
    t = torch.arange(3)
    assert dist.all_reduce_sum(t) is t and dist.all_gather_tensors(t)[0] is t
    assert dist.all_gather_object({"a": 1}) == [{"a": 1}] and dist.broadcast_object(5) == 5
    with dist.main_first():
        pass
    dist.cleanup()
    monkeypatch.setenv("WORLD_SIZE", "2")
    for key in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        dist.init_from_env()


@pytest.mark.parametrize("n,world", [(0, 2), (5, 2), (33, 2), (7, 3), (2, 4), (100, 8)])
def test_shard_range_is_a_contiguous_balanced_split(n, world):
    parts = [dist.shard_range(n, r, world) for r in range(world)]
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(parts[i][1] == parts[i + 1][0] for i in range(world - 1))
    sizes = [hi - lo for lo, hi in parts]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    with pytest.raises(ValueError):
        dist.shard_range(n, world, world)


def test_batchnorm_swap_keeps_parameters_and_single_process_output():
    model = fresh(0).train()
    params = {k: id(p) for k, p in model.named_parameters()}
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ref = fresh(0).train()
    expected = ref(x)
    dist.sync_batchnorm(model, torch.device("cpu"))
    assert sum(isinstance(m, dist.GlobalBatchNorm2d) for m in model.modules()) == 3
    assert {k: id(p) for k, p in model.named_parameters()} == params  # optimizers keep working
    torch.testing.assert_close(model(x), expected)  # one process: plain BatchNorm
    dist.local_batchnorm(model)
    assert not any(isinstance(m, dist.GlobalBatchNorm2d) for m in model.modules())
    assert {k: id(p) for k, p in model.named_parameters()} == params
    _assert_close_state(model.state_dict(), ref.state_dict(), atol=0)
    assert model.training


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    _worker(Path(sys.argv[2]))
