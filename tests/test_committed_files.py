"""Committed results carry no machine's absolute paths: every JSON under benchmarks/results/ and
results/ (and each run's report.md) names files relative to the repository, or describes them."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from conftest import REPO

# an absolute path: /x..., ~/..., C:\... at the start, or a well-known root anywhere in a string
ABSOLUTE = re.compile(r"^(?:/\w|~[/\\]|[A-Za-z]:[\\/])|(?<![\w.~-])/(?:work|home|root|tmp|Users|mnt|scratch|private)/")


def committed(*patterns: str) -> list:
    """Tracked files matching ``patterns`` (git pathspecs); the files on disk outside a checkout."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "ls-files", "--", *patterns], capture_output=True, text=True,
                             check=True, timeout=30).stdout.split()
        return sorted(REPO / f for f in out)
    except (OSError, subprocess.SubprocessError):
        return sorted(f for pat in patterns for f in REPO.glob(pat))


JSONS = committed("benchmarks/results/*.json", "results/*/*.json")
REPORTS = committed("results/*/report.md")


def absolute_paths(obj, where: str = "") -> list[str]:
    """'<where>: <value>' of every key or string value in ``obj`` that holds an absolute path."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if ABSOLUTE.search(str(k)):
                out.append(f"{where}: key {k!r}")
            out += absolute_paths(v, f"{where}.{k}" if where else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += absolute_paths(v, f"{where}[{i}]")
    elif isinstance(obj, str) and ABSOLUTE.search(obj):
        out.append(f"{where}: {obj!r}")
    return out


def test_the_pattern_finds_absolute_paths_and_nothing_else():
    found = absolute_paths({"a": "/work/shared/x.zip", "b": ["~/data", "runs/cpu", "img/s", "1/2"],
                            "c": {"how": "python -m x --cache /tmp/levers"}, "/root/k": 1, "d": "C:\\data",
                            "e": "outside the repository: cifar10-jpeg.zip", "f": "benchmarks/results/x.json"})
    assert found == ["a: '/work/shared/x.zip'", "b[0]: '~/data'", "c.how: 'python -m x --cache /tmp/levers'",
                     ": key '/root/k'", "d: 'C:\\\\data'"]


def test_there_are_committed_results_to_check():
    assert len(JSONS) >= 10 and any(f.parent.name == "results" for f in JSONS) and REPORTS


@pytest.mark.parametrize("path", JSONS, ids=[str(f.relative_to(REPO)) for f in JSONS])
def test_committed_json_holds_no_absolute_path(path):
    found = absolute_paths(json.loads(path.read_text()))
    assert not found, (f"{path.relative_to(REPO)} holds absolute paths (use benchmarks._common.portable): "
                       + "; ".join(found[:5]))


@pytest.mark.parametrize("path", REPORTS, ids=[str(f.relative_to(REPO)) for f in REPORTS])
def test_committed_report_holds_no_absolute_path(path):
    found = [ln.strip() for ln in path.read_text().splitlines() if ABSOLUTE.search(ln.strip(' `"'))
             or re.search(r"[`\"](?:/\w|~/)", ln)]
    assert not found, f"{path.relative_to(REPO)}: {found[:3]}"


def test_commit_run_copies_a_run_without_its_machines_paths(tmp_path, monkeypatch):
    import json

    from tools import commit_run

    run = tmp_path / "run"
    (run / "figures").mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"config": {"cifar_source": "/work/data/c.zip"}, "rows": [
        {"model_dir": "models/x", "note": "/home/me/runs/cpu/models/x"}]}))
    (run / "report.md").write_text("source /tmp/abc/cifar10.zip; image data:image/png;base64,ab+/tmp/zz")
    (run / "figures" / "fig_a.png").write_bytes(b"png")
    root = tmp_path / "repo"
    (root / "figures").mkdir(parents=True)
    (root / "figures" / "fig_old.png").write_bytes(b"old")
    monkeypatch.setattr(commit_run, "ROOT", root)
    written = commit_run.commit(run, "cpu-test")
    got = json.loads((root / "results" / "cpu-test" / "results.json").read_text())
    assert got["config"]["cifar_source"] == "outside the repository: c.zip"
    assert got["rows"][0]["note"] == "outside the repository: x" and got["rows"][0]["model_dir"] == "models/x"
    md = (root / "results" / "cpu-test" / "report.md").read_text()
    assert "/tmp/abc" not in md and "ab+/tmp/zz" in md  # base64 is left alone
    assert sorted(p.name for p in (root / "figures").iterdir()) == ["fig_a.png"]  # one run's figures
    assert len(written) == 3
