"""A real browser in JupyterLab: notebook 03's explorer answers its slider, the widgets of
advlib.widgets answer their controls, and a save writes both files of a notebook pair.

JupyterLab (from this venv) serves a temporary folder on 127.0.0.1; Debian's chromium, driven by
Playwright, opens a notebook there.

* Explorer: a tiny run directory and notebooks/03_visualize.ipynb (parameters injected with papermill);
  Run All Cells from the Run menu, wait for the explorer, press ArrowRight on the slider and check that
  the image changed. A screenshot goes to the test's tmp dir and to runs/browser/explorer.png.
* Widgets: a notebook written at test time builds the attack explorer, the construction player and an
  explorer on tiny in-memory models; move the ε slider and pick a target, step the player, pick a
  filter, and check each time that the picture (the ``<img>`` src) and the text changed.
* Pair: a copy of notebooks/ (the pairs and jupytext.toml); type a marker into a markdown cell of one
  notebook, press Ctrl+S, and find the marker in the copy's .ipynb and in its .py twin: an edit made in
  JupyterLab is saved to the notebook's source (nothing regenerates the notebooks). The repository's
  own notebooks/ is never touched.

Needs /usr/bin/chromium (``tools/browser_deps.sh`` installs it); Playwright never downloads a browser.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOK = REPO / "notebooks" / "03_visualize.ipynb"
PAIR_NOTEBOOK = "06_report.ipynb"  # short; its cell 2 is a one-sentence markdown cell
SCREENSHOT = REPO / "runs" / "browser" / "explorer.png"
FAILURE_SHOT = REPO / "runs" / "browser" / "failure.png"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_run_dir(run_dir: Path, n: int = 50) -> None:
    """Four tiny sets in the release layout (the sample's images plus L2 noise), and one model."""
    from advlib.config import DATASETS, get_profile
    from advlib.data import load_cifar10, save_feature_dataset
    from advlib.paths import RunPaths

    # the smoke run's training images (the sample's, less its validation split), which notebook 03 loads
    x, y = load_cifar10("sample", "train", n=0, seed=0, val=get_profile("smoke").n_val)
    paths = RunPaths.of(run_dir)
    g = torch.Generator().manual_seed(0)
    for name in DATASETS:
        src = torch.randperm(len(x), generator=g)[:n]
        delta = torch.randn(n, *x.shape[1:], generator=g)
        delta = 0.5 * delta / delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)  # L2 radius 0.5, as D_rand/D_det
        labels = (y[src] + (1 if name == "d_det" else 0)) % 10
        meta = {"algorithm": "test-noise", "source_indices": src.tolist()}
        if name in ("d_rand", "d_det"):
            meta["targets"] = labels.tolist()
        save_feature_dataset(paths.dataset(name), (x[src] + delta).clamp(0, 1), labels, meta=meta)
    # one (untrained) model in advlib.train's layout, so the explorer shows its predictions table
    from advlib.models import build_model

    model_dir = paths.source_model("standard")
    model_dir.mkdir(parents=True)
    (model_dir / "config.json").write_text(json.dumps({"arch": "tiny"}))
    torch.save({"model": build_model("tiny").state_dict()}, model_dir / "checkpoint.pt")


def _wait_for_server(url: str, token: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            req = urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer {url}/api/status within {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def _wait_kernel_idle(url: str, token: str, timeout: float = 120) -> None:
    """Until the server lists a kernel that is idle and has a client (the page) connected."""
    deadline, kernels = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        req = urllib.request.Request(f"{url}/api/kernels", headers={"Authorization": f"token {token}"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                kernels = json.load(r)
        except (OSError, ValueError):  # a busy server on a loaded machine: ask again
            time.sleep(0.5)
            continue
        if any(k.get("execution_state") == "idle" and k.get("connections", 0) >= 1 for k in kernels):
            return
        time.sleep(0.5)
    raise TimeoutError(f"no idle, connected kernel after {timeout:.0f}s: {kernels}")


def _run_all_cells(page, tries: int = 3) -> None:
    """Run > Run All Cells from the menu bar; check that the first code cell actually started."""
    first_prompt = page.locator(".jp-CodeCell .jp-InputPrompt").first
    for _ in range(tries):
        page.locator(".jp-Notebook .jp-Cell").first.click()  # focus the notebook so the menu acts on it
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-item:not(.lm-mod-disabled) .lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function("el => /\\[[0-9*]+\\]/.test(el.textContent)", arg=first_prompt.element_handle(),
                                   timeout=15_000)
            return
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
    raise AssertionError(f"Run All Cells did not start the first cell after {tries} tries "
                         f"(prompt {first_prompt.inner_text()!r})")


def _need_chromium() -> None:
    if not CHROMIUM.is_file():
        msg = f"{CHROMIUM} not found: run tools/browser_deps.sh (installs Debian's chromium) to enable this test"
        print(msg)
        pytest.skip(msg)


@contextmanager
def _jupyterlab(root: Path, tmp_path: Path):
    """(base url, token) of a JupyterLab serving ``root``, its config, runtime and settings under ``tmp_path``
    and its log in ``tmp_path / "jupyterlab.log"``; stopped (with its kernels) on exit."""
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    for var, sub in (("JUPYTER_CONFIG_DIR", "jconfig"), ("JUPYTER_RUNTIME_DIR", "jruntime"),
                     ("JUPYTERLAB_SETTINGS_DIR", "jlab-settings"), ("JUPYTERLAB_WORKSPACES_DIR", "jlab-workspaces"),
                     ("IPYTHONDIR", "ipython")):
        env[var] = str(tmp_path / sub)
    env["MPLBACKEND"] = "Agg"
    # kernels import this checkout's advlib (a git worktree shares another checkout's editable install)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    # no "get Jupyter news?" toast over the page, and no attempt to fetch news
    settings = tmp_path / "jlab-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"fetchNews": "false"}))
    log = tmp_path / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--IdentityProvider.token={token}",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--ServerApp.root_dir={root}"] + (["--allow-root"] if os.geteuid() == 0 else [])
    with open(log, "wb") as logf:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(url, token, proc, log)
        yield url, token
    finally:
        # stop the server and its kernels (own process group, started above)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture
def lab(tmp_path):
    """(base url, token, notebook path relative to the server root, tmp_path) of a JupyterLab serving tmp_path."""
    _need_chromium()
    import papermill

    run_dir = tmp_path / "run"
    _write_run_dir(run_dir)
    # a copy with the parameters injected, not executed (papermill --prepare-only)
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "03_visualize.ipynb"), prepare_only=True,
                               parameters={"profile": "smoke", "run_dir": str(run_dir), "overrides": "",
                                           "figures_dir": str(tmp_path / "figures"), "origin": "constructed"})
    with _jupyterlab(tmp_path, tmp_path) as (url, token):
        yield url, token, "03_visualize.ipynb", tmp_path


def test_explorer_renders_and_slider_changes_image(lab):
    from playwright.sync_api import expect, sync_playwright

    url, token, nb_path, tmp_path = lab
    FAILURE_SHOT.unlink(missing_ok=True)  # only a failure of this run leaves one
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = None
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(f"{url}/lab/tree/{nb_path}?token={token}")
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            _wait_kernel_idle(url, token)
            expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(1, timeout=60_000)
            _run_all_cells(page)

            # the explorer, or the first traceback (fail fast instead of waiting out the timeout)
            explorer = page.locator(".advlib-explorer")
            # (JupyterLab renders tracebacks as stderr; warnings are stderr too, hence the text filter)
            error = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                                 has_text="Traceback")
            explorer.or_(error).first.wait_for(state="visible", timeout=180_000)
            if error.count():
                raise AssertionError(f"a notebook cell failed:\n{error.first.inner_text()[-3000:]}")
            image = explorer.locator("img.advlib-image")
            image.wait_for(state="visible")
            page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=image.element_handle())
            src_before = image.get_attribute("src")
            assert src_before, "explorer image has no src"

            handle = explorer.locator(".advlib-slider .noUi-handle")
            handle.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_function("([el, before]) => el.getAttribute('src') !== before",
                                   arg=[image.element_handle(), src_before], timeout=30_000)
            src_after = image.get_attribute("src")
            assert src_after and src_after != src_before
            table = explorer.locator(".advlib-predictions table")
            expect(table).to_contain_text("standard")
            readout = explorer.locator(".advlib-slider .widget-readout").inner_text()
            assert readout.strip() == "1", f"slider readout {readout!r}, expected 1 after one ArrowRight"
            page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=image.element_handle())

            explorer.scroll_into_view_if_needed()
            shot = tmp_path / "explorer.png"
            explorer.screenshot(path=str(shot))
            page.screenshot(path=str(tmp_path / "page.png"), full_page=False)
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, SCREENSHOT)
            assert shot.stat().st_size > 5000
            # the notebook saved its figures too
            figs = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
            assert "fig_side_by_side.png" in figs and "fig_spectra.png" in figs, figs
            print(json.dumps({"screenshot": str(SCREENSHOT), "src_before": src_before[:40], "src_after": src_after[:40]}))
        except Exception:
            # leave evidence for whoever reads the CI log: what the page showed, and the server log
            if page is not None:
                FAILURE_SHOT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(FAILURE_SHOT))
                print(f"failure screenshot: {FAILURE_SHOT}")
            print((tmp_path / "jupyterlab.log").read_text()[-4000:])
            raise
        finally:
            browser.close()


def _wait_for_marker(files: list[Path], marker: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(marker in f.read_text() for f in files):
            return
        time.sleep(0.25)
    missing = [f.name for f in files if marker not in f.read_text()]
    raise AssertionError(f"{marker!r} not saved to {missing} within {timeout:.0f}s of Ctrl+S")


def test_a_save_in_jupyterlab_writes_the_notebook_and_its_py_twin(tmp_path):
    import jupytext
    from playwright.sync_api import expect, sync_playwright

    _need_chromium()
    repo_nbs = REPO / "notebooks"
    untouched = {p.name: p.read_bytes() for p in repo_nbs.iterdir() if p.is_file()}
    copy = tmp_path / "notebooks"  # the pairs and jupytext.toml, as a checkout has them
    shutil.copytree(repo_nbs, copy, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    ipynb, py = copy / PAIR_NOTEBOOK, (copy / PAIR_NOTEBOOK).with_suffix(".py")
    assert (copy / "jupytext.toml").is_file() and py.is_file()
    sentence = jupytext.read(ipynb).cells[2]
    assert sentence.cell_type == "markdown", sentence
    marker = f"advlib-edit-{secrets.token_hex(6)}"
    assert marker not in ipynb.read_text() + py.read_text()

    with _jupyterlab(copy, tmp_path) as (url, token), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = None
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(f"{url}/lab/tree/{PAIR_NOTEBOOK}?token={token}")
            cell = page.locator(".jp-Notebook .jp-Cell").nth(2)  # the markdown sentence after the parameters
            expect(cell).to_have_class(re.compile(r"\bjp-MarkdownCell\b"))
            cell.locator(".jp-RenderedMarkdown").wait_for(state="visible")
            cell.dblclick()  # a rendered markdown cell opens its editor on a double click
            editor = cell.locator(".cm-content")
            editor.wait_for(state="visible")
            editor.click()
            page.keyboard.press("Control+End")
            page.keyboard.type(f" {marker}")
            expect(editor).to_contain_text(marker)
            page.keyboard.press("Control+s")
            _wait_for_marker([ipynb, py], marker)
        except Exception:
            if page is not None:
                FAILURE_SHOT.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(FAILURE_SHOT))
                print(f"failure screenshot: {FAILURE_SHOT}")
            print((tmp_path / "jupyterlab.log").read_text()[-4000:])
            raise
        finally:
            browser.close()

    # the edit is in that cell of both files, no other cell changed, and the pair is still in sync
    before = [(c.cell_type, c.source) for c in jupytext.read(repo_nbs / PAIR_NOTEBOOK).cells]
    before[2] = ("markdown", f"{sentence.source} {marker}")
    for f in (ipynb, py):
        assert [(c.cell_type, c.source) for c in jupytext.read(f).cells] == before, f"{f.name} after the save"
    assert {p.name: p.read_bytes() for p in repo_nbs.iterdir() if p.is_file()} == untouched, "repository notebooks/ changed"


# --- the widgets of advlib.widgets, each driven in the browser --------------------------------------
# One notebook written at test time builds them on tiny in-memory models (no run directory); one
# JupyterLab and one page serve the three tests below.
WIDGET_CELLS = [
    """import torch
torch.set_num_threads(1)
from advlib import widgets
from advlib.models import build_model
from advlib.viz import FeatureSet

torch.manual_seed(0)
standard = build_model("tiny").eval()
torch.manual_seed(1)
robust = build_model("tiny").eval()
g = torch.Generator().manual_seed(0)
x, y = torch.rand(16, 3, 32, 32, generator=g), torch.arange(16) % 10
# a targeted set of 16 rows: rows 0, 3, 6, ... target their own class, the others the next class
targets = torch.where(torch.arange(16) % 3 == 0, y, (y + 1) % 10)
d_rand = FeatureSet("d_rand", (x + 0.05 * torch.randn(16, 3, 32, 32, generator=g)).clamp(0, 1), targets,
                    {"source_indices": list(range(16)), "targets": targets.tolist(),
                     "source_model": {"which": "standard"}})""",
    'widgets.AttackExplorer({"standard": standard, "robust": robust}, x, y, eps=0.5, steps=5, steps_max=20)',
    'widgets.ConstructionPlayer({"D_R": robust, "D_NR": standard}, x, y, steps=8, step_size=0.3)',
    'widgets.Explorer({"d_rand": d_rand}, (x, y), models={"standard": standard})',
]
WIDGET_BOXES = (".advlib-attack-explorer", ".advlib-construction-player", ".advlib-explorer")


def _write_widget_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in WIDGET_CELLS]
    nbformat.write(nb, str(path))


@contextmanager
def _evidence(page, log_dir: Path):
    """On failure: a screenshot of the page and the end of the server log, for whoever reads the CI log."""
    try:
        yield
    except Exception:
        FAILURE_SHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(FAILURE_SHOT))
        print(f"failure screenshot: {FAILURE_SHOT}")
        print((log_dir / "jupyterlab.log").read_text()[-4000:])
        raise


@pytest.fixture(scope="module")
def widget_page(tmp_path_factory):
    """(page, tmp dir) of the widget notebook opened in JupyterLab, all cells run, every widget shown."""
    from playwright.sync_api import expect, sync_playwright

    _need_chromium()
    tmp = tmp_path_factory.mktemp("widgets")
    _write_widget_notebook(tmp / "widgets.ipynb")
    with _jupyterlab(tmp, tmp) as (url, token), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.set_default_timeout(60_000)
            with _evidence(page, tmp):
                page.goto(f"{url}/lab/tree/widgets.ipynb?token={token}")
                page.locator(".jp-Notebook .jp-Cell").first.wait_for()
                _wait_kernel_idle(url, token)
                expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(
                    1, timeout=60_000)
                _run_all_cells(page)
                error = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                                     has_text="Traceback")
                for box in WIDGET_BOXES:
                    page.locator(box).or_(error).first.wait_for(state="visible", timeout=180_000)
                    if error.count():
                        raise AssertionError(f"a notebook cell failed:\n{error.first.inner_text()[-3000:]}")
            yield page, tmp
        finally:
            browser.close()


def _loaded_src(page, img) -> str:
    """The ``src`` of an ``<img>`` once it has loaded a picture."""
    img.scroll_into_view_if_needed()
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img.element_handle())
    src = img.get_attribute("src")
    assert src, "image has no src"
    return src


def _wait_src_change(page, img, before: str) -> str:
    page.wait_for_function("([el, before]) => el.getAttribute('src') !== before", arg=[img.element_handle(), before],
                           timeout=60_000)
    return _loaded_src(page, img)


def _press_right(page, box, css: str, times: int = 1) -> None:
    handle = box.locator(f"{css} .noUi-handle")
    handle.focus()
    for _ in range(times):
        page.keyboard.press("ArrowRight")


def test_attack_explorer_answers_eps_and_target_in_the_browser(widget_page):
    from playwright.sync_api import expect

    page, tmp = widget_page
    box = page.locator(".advlib-attack-explorer")
    with _evidence(page, tmp):
        adv = box.locator("img.advlib-adv-image").first
        before = _loaded_src(page, adv)
        info = box.locator(".advlib-adv-info").first
        expect(info).to_contain_text("→")
        expect(box.locator(".advlib-attack-info")).to_contain_text("ε = 0.5000")
        _press_right(page, box, ".advlib-eps", times=4)  # 0.5 -> 0.6 in steps of 0.025
        after = _wait_src_change(page, adv, before)
        assert after != before
        expect(box.locator(".advlib-attack-info")).to_contain_text("ε = 0.6000", timeout=60_000)
        norm = float(re.search(r"‖δ‖₂ = ([0-9.]+)", info.inner_text()).group(1))
        assert norm <= 0.6 + 1e-4, info.inner_text()
        box.locator(".advlib-target select").select_option(label="targeted: horse")
        _wait_src_change(page, adv, after)
        expect(box.locator(".advlib-attack-info")).to_contain_text("targeted at horse", timeout=60_000)
        expect(info).to_contain_text("target horse")
        box.screenshot(path=str(tmp / "attack.png"))


def test_construction_player_steps_through_the_trajectory_in_the_browser(widget_page):
    from playwright.sync_api import expect

    page, tmp = widget_page
    box = page.locator(".advlib-construction-player")
    with _evidence(page, tmp):
        current = box.locator("img.advlib-player-image").first
        curve = box.locator("img.advlib-player-curve").first
        before, curve_before = _loaded_src(page, current), _loaded_src(page, curve)
        expect(box.locator(".advlib-player-info").first).to_contain_text("step 0 of 8")
        _press_right(page, box, ".advlib-step", times=3)
        _wait_src_change(page, current, before)
        _wait_src_change(page, curve, curve_before)
        expect(box.locator(".advlib-player-info").first).to_contain_text("step 3 of 8", timeout=60_000)
        box.screenshot(path=str(tmp / "player.png"))


def test_explorer_filter_narrows_the_images_in_the_browser(widget_page):
    from playwright.sync_api import expect

    page, tmp = widget_page
    box = page.locator(".advlib-explorer")
    with _evidence(page, tmp):
        image = box.locator("img.advlib-image")
        before = _loaded_src(page, image)
        expect(box.locator(".advlib-info")).to_contain_text("16 image(s) in this selection")
        expect(box.locator(".advlib-facts")).to_contain_text("target = true label: yes")  # row 0
        box.locator(".advlib-filter select").select_option(label="target ≠ true label (10)")
        _wait_src_change(page, image, before)  # row 1 now
        expect(box.locator(".advlib-info")).to_contain_text("10 image(s) in this selection", timeout=60_000)
        expect(box.locator(".advlib-facts")).to_contain_text("target = true label: no")
        box.screenshot(path=str(tmp / "explorer_filter.png"))
