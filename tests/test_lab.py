"""`make lab`: JupyterLab starts on notebooks/ with the project's kernel and jupytext's contents
manager (each notebook paired with its .py twin, so a save writes both), and the notebooks' default
run directory is where `make demo` writes. (tests/test_browser.py saves an edit there through a real browser.)"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import REPO

from advlib import runner
from advlib.steps import base

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str):
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def make_lab(args: str) -> list[str]:
    """The `make lab` command line. In a checkout without its own .venv (a git worktree tested with
    another checkout's interpreter) make would build one there first: serve with this interpreter instead."""
    cmd = ["make", "lab", f"LAB_ARGS={args}"]
    if not (REPO / ".venv" / "bin" / "python").exists():
        cmd += ["-o", ".venv/.installed", f"VPY={sys.executable}"]
    return cmd


def test_make_lab_serves_the_notebooks_with_the_project_kernel(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"))
    args = (f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --ServerApp.port_retries=0 "
            f"--IdentityProvider.token={token}" + (" --allow-root" if os.geteuid() == 0 else ""))
    proc = subprocess.Popen(make_lab(args), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline, contents = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                contents = _get(f"{url}/api/contents", token)
                break
            except OSError:
                time.sleep(0.5)
        assert contents is not None, f"JupyterLab did not answer (exit code {proc.poll()})"
        served = sorted(c["name"] for c in contents["content"] if c["name"].endswith(".ipynb"))
        assert served == [p.name for p in runner.list_notebooks()]
        # jupytext's contents manager is active: it serves each .py twin as the notebook it pairs with
        twin = runner.list_notebooks()[0].with_suffix(".py").name
        model = _get(f"{url}/api/contents/{twin}?content=1", token)
        assert model["type"] == "notebook", f"{twin} served as {model['type']!r}: jupytext's server extension is off"
        assert model["content"]["cells"][0]["source"].startswith("# 1 · "), model["content"]["cells"][0]
        specs = _get(f"{url}/api/kernelspecs", token)["kernelspecs"]
        assert "python3" in specs
        argv0 = specs["python3"]["spec"]["argv"][0]
        assert argv0 in ("python", str(REPO / ".venv" / "bin" / "python")) or ".venv" in argv0, argv0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def test_notebooks_default_to_make_demos_run_directory():
    import nbformat

    for nb_path in runner.list_notebooks():
        params = runner.notebook_parameters(nb_path)
        assert params["run_dir"]["default"] == '""', f"{nb_path.name}: run_dir must default to the profile's own"
        nb = nbformat.read(nb_path, as_version=4)
        assert any("pl.setup(profile, run_dir, overrides, figures_dir)" in c.source or
                   "setup(profile, run_dir" in c.source for c in nb.cells if c.cell_type == "code"), nb_path.name
    assert base.default_run_dir("smoke") == REPO / "runs" / "demo"
    make_out = subprocess.run(["make", "-n", "demo"], cwd=REPO, capture_output=True, text=True).stdout
    assert "--out runs/demo" in make_out and "--profile smoke" in make_out
