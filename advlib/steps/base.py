"""What every notebook's steps share: the run (profile, run directory, CIFAR-10 splits), the one
place a model is trained or loaded, and markdown tables and paragraphs for the cells to show."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .. import config, data
from ..paths import RunPaths
from ..utils import get_device

REPO = Path(__file__).resolve().parents[2]


def default_run_dir(profile: str) -> Path:
    """Where a profile's run lives when none is named: ``runs/demo`` for smoke (what ``make demo``
    writes, so the notebooks opened in JupyterLab show it), ``runs/<profile>`` otherwise; under the
    source checkout when advlib runs from one, else under the current directory."""
    base = REPO if (REPO / "notebooks").is_dir() else Path.cwd()
    return base / "runs" / ("demo" if profile == "smoke" else profile)


@dataclass
class Run:
    """One notebook's view of a run: the validated profile ``cfg``, the run directory ``paths``, the
    figure folder, and the CIFAR-10 splits, loaded on first use: ``train`` (n_train images),
    ``val`` (n_val held out of the training images: training is watched on it, levers are chosen on
    it; None when the profile holds none out) and ``test`` (n_test; only reported on)."""

    cfg: config.Profile
    paths: RunPaths
    figures: Path
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, cfg: config.Profile, run_dir, *, figures=None, **splits) -> "Run":
        """A run on ``run_dir`` with ``cfg``; ``splits`` (train=, val=, test= as (images, labels))
        stand in for the CIFAR-10 splits, e.g. your own tensors or tests' synthetic ones."""
        paths = RunPaths.of(run_dir)
        bad = sorted(set(splits) - {"train", "val", "test"})
        if bad:
            raise ValueError(f"Run.of: unknown split(s) {bad}; expected train, val, test")
        return cls(cfg, paths, Path(figures) if figures else paths.figures, dict(splits))

    @property
    def device(self):
        return get_device(self.cfg.device)

    def split(self, name: str):
        """(images, labels) of ``name`` ("train" | "val" | "test"), seeded and class-balanced."""
        if name not in self._cache:
            c = self.cfg
            if name == "val" and c.n_val == 0:
                self._cache[name] = None
            else:
                n = c.n_test if name == "test" else c.n_train
                self._cache[name] = data.load_cifar10(c.cifar_source, name, n=n, seed=c.seed, root=self.paths.data,
                                                      val=c.n_val)
        return self._cache[name]

    @property
    def train(self):
        return self.split("train")

    @property
    def val(self):
        return self.split("val")

    @property
    def test(self):
        return self.split("test")

    def seed_arg(self, seed: int):
        """None for the run's own seed (the model's plain folder), else the extra seed."""
        return None if seed == self.cfg.seed else seed


class MissingInput(FileNotFoundError):
    """What a step raises when an earlier notebook has not made its inputs yet. In a notebook it
    shows as one line that names the notebook or command to run (no traceback); the cell still
    fails, so a headless run stops there."""


def _one_line(shell, etype, value, tb, tb_offset=None):
    print(f"{etype.__name__}: {value}")


def _quiet_missing_inputs() -> None:
    """In IPython, show :class:`MissingInput` as one line instead of a traceback."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((MissingInput,), _one_line)


def setup(profile: str, run_dir: str = "", overrides: str = "", figures_dir: str = "") -> Run:
    """What every notebook's setup cell calls: the validated profile, the run directory and the
    figure folder; seeds Python, NumPy and torch with the profile's seed. In a notebook, a step
    whose inputs are missing then says in one line which notebook makes them."""
    from ..utils import set_seed

    _quiet_missing_inputs()

    cfg = config.load(profile, overrides)
    paths = RunPaths.of(run_dir or default_run_dir(profile))
    set_seed(cfg.seed)
    if cfg.num_threads > 0:
        import torch

        torch.set_num_threads(cfg.num_threads)
    return Run(cfg, paths, Path(figures_dir).expanduser() if figures_dir else paths.figures)


def recipe(run: Run, role: str, dataset: str | None = None, **changes):
    """The profile's training recipe for ``role`` (``advlib.recipes.train_config``), with ``changes``."""
    from ..recipes import train_config

    tcfg = train_config(run.cfg, role, dataset)
    return dataclasses.replace(tcfg, **changes) if changes else tcfg


def train_or_load(run: Run, tcfg, images, labels, folder, *, origin: str, dataset: str, progress: bool = True):
    """Train ``tcfg`` on (images, labels) in ``folder``, or load it when it is there (the model is
    keyed by its data's sha256 and its config: other data or settings train anew); training is
    watched on the validation split, never on the test set. Returns (model, history)."""
    from ..train import train_or_load as fit_or_load

    return fit_or_load(tcfg, images, labels, folder, eval_data=run.val, progress=progress, device=run.device,
                       origin=origin, dataset=dataset, eval_every=run.cfg.eval_every)


def source_model(run: Run, role: str, progress: bool = True):
    """The source model of ``role`` ("standard" | "robust" | "targeted") from notebook 02 (loaded;
    trained first if the run lacks it)."""
    model, _ = train_or_load(run, recipe(run, role), *run.train, run.paths.source_model(role), origin="cifar10",
                             dataset="cifar10", progress=progress)
    return model


def targeted_source(run: Run):
    """The model D_rand, D_det and the D_other control attack (``construct.source_role``): the
    standard source model, or the profile's own standard model for the targeted sets."""
    from ..construct import source_role

    return source_model(run, source_role("d_rand", run.cfg))


# --- what cells show ------------------------------------------------------------------------------
def pct(v) -> str:
    """A fraction as a percent with one decimal ("61.5%"); "–" for None."""
    return "–" if v is None else f"{100 * float(v):.1f}%"


def duration(seconds) -> str:
    """Seconds in readable units: "0.4 s", "42 s", "3 min 05 s", "1 h 02 min"."""
    if seconds is None:
        return "–"
    s = float(seconds)
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    m, sec = divmod(round(s), 60)
    if m < 60:
        return f"{m} min {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1 else f"{v:.1f}"
    return "–" if v is None else str(v)


def markdown_table(rows: list[dict]) -> str:
    """A list of flat dicts as a markdown table (columns in first-seen order)."""
    if not rows:
        return "_(nothing)_"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def show(text: str):
    """Markdown a notebook cell displays (its last expression)."""
    from IPython.display import Markdown

    return Markdown(text)


def table(rows: list[dict]):
    """A markdown table a notebook cell displays."""
    return show(markdown_table(rows))


def save(run: Run, fig, name: str):
    """Save ``fig`` as ``<figures>/<name>.png`` and ``.pdf`` and return it (the cell shows it); a
    figure that does not stamp itself gets the run's stamp (profile, commit, data)."""
    from .. import viz

    viz.save_figure(fig, name, run.figures, stamp=None if viz.get_stamp(fig) else viz.stamp_text(run.cfg))
    return fig


def _without_docstring(lines: list[str]) -> list[str]:
    """A function's source lines without its docstring (the signature and the body stay)."""
    import ast

    tree = ast.parse("".join(lines).lstrip() if lines[0][:1].isspace() else "".join(lines))
    fn = tree.body[0]
    body = getattr(fn, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        return lines[:body[0].lineno - 1] + lines[body[0].end_lineno:]
    return lines


def source_of(*objects, note: str = "", docstrings: bool = False):
    """The library's own source of ``objects`` (functions or classes), shown as code in markdown with
    the file and line they live at: a notebook shows the algorithm it runs, never a copy of it.
    ``docstrings=False`` leaves the docstrings out (the code is what the cell is for)."""
    import inspect

    parts = [note] if note else []
    for obj in objects:
        lines, start = inspect.getsourcelines(obj)
        if not docstrings:
            lines = _without_docstring(lines)
        path = Path(inspect.getsourcefile(obj)).resolve()
        where = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
        parts.append(f"`{where}`, line {start}:\n\n```python\n{''.join(lines).rstrip()}\n```")
    return show("\n\n".join(parts))


def smoke_note(profile: str | None) -> str:
    if profile != "smoke":
        return ""
    return ("*Smoke profile*: a tiny network, one or two epochs, 600 embedded images. Its numbers sit near "
            "chance (10%) by design; they show that every step runs, not the paper's result. Run the `cpu` "
            "profile (about an hour on a laptop) for the real thing.\n\n")


def history_rows(histories: dict[str, dict]) -> list[dict]:
    """One row per trained model: epochs, final loss, accuracy on its own training set and on the
    validation split (the number watched during training), training time."""
    rows = []
    for name, h in histories.items():
        loss = (h.get("loss") or [None])[-1]
        rows.append({"trained on": name, "epochs": len(h.get("loss", [])),
                     "final loss": "–" if loss is None else f"{loss:.3f}",
                     "train acc": pct((h.get("train_acc") or [None])[-1]),
                     "validation acc": pct((h.get("eval_acc") or [None])[-1]),
                     "training time": duration(sum(h.get("seconds", [])))})
    return rows


def history_table(histories: dict[str, dict]):
    return table(history_rows(histories))


def parse_which(which: str, default: list[str]) -> list[str]:
    """Notebook parameter ``which``: comma-separated dataset names ("" = ``default``)."""
    names = [s.strip() for s in str(which).split(",") if s.strip()]
    bad = [n for n in names if n not in config.DATASETS]
    if bad:
        raise ValueError(f"parameter 'which': unknown {bad}; expected names from {config.DATASETS}")
    return names or list(default)


__all__ = ["Run", "MissingInput", "setup", "default_run_dir", "recipe", "train_or_load", "source_model", "targeted_source", "pct",
           "duration", "markdown_table", "show", "table", "save", "source_of", "smoke_note", "history_rows", "history_table",
           "parse_which"]
