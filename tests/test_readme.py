"""The README (and every docs/*.md) quotes only committed files, its tables are exactly what the
commands print, every block kind renders, and the "use it on your own model" example runs."""

from __future__ import annotations

import json
import re

import pytest
from conftest import REPO

from tools import update_readme
from tools.readme_blocks import BENCHMARKS, KINDS, RUN_KINDS, blocks, regenerate, render

README = REPO / "README.md"
MARKDOWN = update_readme.default_files(REPO)  # README.md and docs/*.md
BLOCKS = [(f, kind, rel, body) for f in MARKDOWN for kind, rel, body in blocks(f.read_text())]


def test_the_readme_has_generated_blocks_and_the_files_are_found():
    assert MARKDOWN[0] == README
    kinds = {kind for f, kind, _, _ in BLOCKS if f == README}
    assert "rows" in kinds, "the README shows at least one run's table from results/"


@pytest.mark.parametrize("md, kind, rel, body", BLOCKS,
                         ids=[f"{f.name}:{kind}:{rel}" for f, kind, rel, _ in BLOCKS])
def test_each_generated_block_is_current_and_backed_by_a_committed_file(md, kind, rel, body):
    """A block's body is exactly what its renderer draws from the committed file it names."""
    assert kind in KINDS, f"{md.name}: unknown block kind {kind!r}"
    path = REPO / rel
    assert path.is_file(), f"{md.name}: block {kind} cites {rel}, which is not in the repository"
    if kind in ("table", "rows"):
        assert rel.startswith("results/") and rel.endswith("results.json")
        for f in ("report.md", "timings.json", "config.json"):
            assert (path.parent / f).is_file(), f"{path.parent.name}: committed runs keep {f} beside results.json"
    assert render(kind, path) == body, f"{md.name}: stale block '{kind} {rel}': run python -m tools.update_readme"


def test_regenerate_rebuilds_every_block_and_nothing_else():
    text = README.read_text()
    stale = "<!-- advlib timings results/cpu-2026-11-30c/timings.json -->\nold numbers\n<!-- end -->"
    doc = f"# A doc\n\nprose before\n\n{stale}\n\nprose after\n"
    out = regenerate(doc, REPO)
    assert out.startswith("# A doc\n\nprose before\n\n<!-- advlib timings") and out.endswith("\n\nprose after\n")
    assert "old numbers" not in out and "| **01–06** |" in out
    assert len(blocks(out)) == 1 and len(blocks(text)) == len(blocks(regenerate(text, REPO)))
    with pytest.raises(FileNotFoundError, match="not in the repository"):
        regenerate("<!-- advlib timings results/nope/timings.json -->\n<!-- end -->", REPO)


def test_update_readme_checks_and_rewrites_the_files_it_is_given(tmp_path, capsys):
    """``python -m tools.update_readme [--check] FILES``: --check reports the stale block and writes
    nothing; without it the file is rewritten, after which --check passes."""
    doc = tmp_path / "doc.md"
    stale = "intro\n\n<!-- advlib pgd benchmarks/results/bench_pgd-cpu.json -->\nold\n<!-- end -->\n"
    doc.write_text(stale)
    assert update_readme.main(["--check", str(doc)]) == 1
    assert "stale generated blocks: pgd benchmarks/results/bench_pgd-cpu.json" in capsys.readouterr().err
    assert doc.read_text() == stale
    assert update_readme.main([str(doc)]) == 0
    assert "`advlib.pgd`" in doc.read_text() and "old" not in doc.read_text()
    assert update_readme.main(["--check", str(doc)]) == 0
    assert update_readme.main(["--check", str(tmp_path / "missing.md")]) == 2


def test_default_files_are_the_readme_and_the_docs(tmp_path):
    (tmp_path / "README.md").write_text("r")
    assert update_readme.default_files(tmp_path) == [tmp_path / "README.md"]
    (tmp_path / "docs").mkdir()
    for name in ("b.md", "a.md", "notes.txt"):
        (tmp_path / "docs" / name).write_text("d")
    assert update_readme.default_files(tmp_path) == [tmp_path / "README.md", tmp_path / "docs" / "a.md",
                                                      tmp_path / "docs" / "b.md"]


def test_every_kind_has_a_renderer_and_the_readme_uses_it():
    """Each benchmark kind is rendered by its script's own ``render``; every kind renders in the
    README (none is kept without a block that shows it)."""
    import importlib

    for script in BENCHMARKS.values():
        assert callable(importlib.import_module(f"benchmarks.{script}").render), script
    used = {kind for _, kind, _, _ in BLOCKS}
    assert set(KINDS) == set(RUN_KINDS) | set(BENCHMARKS)
    assert used == set(KINDS), f"kinds no block uses: {sorted(set(KINDS) - used)}"


def test_readme_and_docs_cite_only_files_in_the_repository():
    for f in MARKDOWN:
        text = f.read_text()
        assert "DESIGN.md" not in text and "../shared" not in text, f.name
        cited = set(re.findall(r"`((?:results|benchmarks|figures|notebooks|advlib|tools|tests|docs)/[^`\s*]+)`", text))
        cited |= set(re.findall(r"\]\(((?:results|benchmarks|figures|notebooks|docs)/[^)\s]+)\)", text))
        base = REPO if f == README else f.parent
        missing = sorted(c for c in cited if not ((REPO / c.rstrip("/")).exists() or (base / c.rstrip("/")).exists())
                         and "<" not in c)
        assert not missing, f"{f.relative_to(REPO)} cites files that do not exist: {missing}"


def test_readme_is_a_front_page():
    """At most 200 lines: the claim, the commands, the current run's claims with verdicts and its
    table, one figure, the notebook map, the profiles, where to read more."""
    text = README.read_text()
    assert len(text.splitlines()) <= 200, f"README.md has {len(text.splitlines())} lines (a front page: <= 200)"
    kinds = {kind for f, kind, _, _ in BLOCKS if f == README}
    assert {"claims", "rows"} <= kinds, kinds
    assert text.count("![") >= 1 and "docs/" in text


def test_readme_names_the_paper_the_release_and_the_commands():
    text = README.read_text()
    assert "arxiv.org/abs/1905.02175" in text and "MadryLab/constructed-datasets" in text
    for cmd in ("make demo", "make test", "make lab"):
        assert cmd in text


def test_own_model_example_runs(tmp_path, monkeypatch):
    text = (REPO / "docs" / "library.md").read_text()
    m = re.search(r"<!-- example: own-model -->\s*```python\n(.*?)```", text, re.S)
    assert m, "docs/library.md has a 'use it on your own model' example"
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(m.group(1), "README example", "exec"), scope)  # noqa: S102 - the README's own code
    assert (tmp_path / "my_d_det" / "CIFAR_ims").is_file()
    assert 0.0 <= scope["robust"] <= scope["clean"] <= 1.0


def test_renderers_show_the_files_values(tmp_path):
    """Each renderer prints the numbers of its JSON (not a cached copy) and an unknown kind fails."""
    inv = {"n": 500, "rows": [{"model": "robust", "steps": 75, "step": 0.2, "schedule": "constant",
                                 "final_rel_distance": 0.12448, "moved_from_start_rel": 0.52, "seconds": 35.1}]}
    (tmp_path / "inv.json").write_text(json.dumps(inv))
    out = render("invert", tmp_path / "inv.json")
    assert "robust model (D_R) | 75 × 0.2 (constant) | 0.124 | 0.52 | 35 s" in out and "500 images" in out
    sets = {"rows": [{"set": "d_det", "setting": {"epochs": 40, "augment": ""}, "final_train_acc": 0.99,
                      "true_test_acc": 0.2734, "seconds": 130.0}]}
    (tmp_path / "sets.json").write_text(json.dumps(sets))
    out = render("sets", tmp_path / "sets.json")
    assert "| d_det | epochs 40, augment none | 99.0% | 27.3% | 2 min 10 s |" in out and "test acc" in out
    # measured on the validation split (the keys every lever script writes now)
    sets = {"split": "val", "rows": [{**sets["rows"][0], "true_acc": 0.3}]}
    (tmp_path / "sets.json").write_text(json.dumps(sets))
    out = render("sets", tmp_path / "sets.json")
    assert "true-label validation acc" in out and "| 30.0% |" in out
    target = {"rows": [{"recipe": {"augment": "crop,flip", "weight_decay": 5e-4, "epochs": 15},
                        "source_clean_acc": 0.6296, "source_pgd20_0.25_n500": 0.31,
                        "sets": {"d_det": {"hit_rate": 0.8115, "true_test_acc": [0.328, 0.338, 0.318],
                                           "mean": 0.328, "std": 0.01}}}]}
    (tmp_path / "target.json").write_text(json.dumps(target))
    out = render("target", tmp_path / "target.json")
    assert ("| 15 ep, augmentation crop,flip, wd 0.0005 | 63.0% | 31.0% | d_det | 81.2% | **32.8% ± 1.0** "
            "(32.8, 33.8, 31.8) |") in out
    with pytest.raises(ValueError, match="unknown block kind 'nope'"):
        render("nope", tmp_path / "sets.json")


def test_goals_v1_table_averages_seeds_and_judges_each_goal():
    from tools.readme_blocks import goals_v1_table as goals_table

    def row(dataset, seed, clean, robust):
        return {"dataset": dataset, "seed": seed, "clean_acc": clean, "robust_acc": {"0.25": robust}}

    results = {"rows": [row("standard", 0, 0.67, 0.12), row("d_robust", 0, 0.45, 0.30), row("d_robust", 1, 0.45, 0.26),
                        row("d_non_robust", 0, 0.33, 0.05), row("d_rand", 0, 0.31, 0.0), row("d_det", 0, 0.25, 0.0)]}
    out = goals_table(results, {"01_download_data.ipynb": 60.0, "02_construct_datasets.ipynb": 3000.0,
                                "07_controls.ipynb": 9999.0})
    lines = {ln.split(" | ")[0].lstrip("| "): ln for ln in out.splitlines()}
    assert lines["wall time, notebooks 01–06"].endswith("| 51 min 00 s | ≤ 60 min | yes |")  # 07 not counted
    assert "| 12.0% | ≤ 10% | **no** |" in lines["standard model, L2 PGD robust @ 0.25"]
    assert "| +23.0 pts |" in lines["D_R robust − D_NR robust @ 0.25"]  # mean of 30 and 26, minus 5
    assert lines["D_NR robust @ 0.25"].endswith("| yes |")
    assert lines["D_det clean accuracy on the true test set"].endswith("| 25.0% | ≥ 30% | **no** |")


def test_goals_table_judges_each_goal_from_the_claims_and_their_verdicts():
    from tests.test_claims import _results
    from tools.readme_blocks import goals_table

    good = goals_table(_results(d_r=(0.30, 0.15), ctrl=(0.28, 0.03)), {"02_construct_datasets.ipynb": 4000.0,
                                                                     "10_beyond.ipynb": 600.0})
    lines = {ln.split(" | ")[0].lstrip("| "): ln for ln in good.splitlines()}
    declared = lines["D_R robust − its matched control's @ 0.5 (the declared radius)"]
    assert ", supported |" in declared and declared.endswith("| ≥ +10 pts, supported | yes |")
    assert lines["D_NR robust vs its matched control's @ 0.5"].endswith("| yes |")
    assert lines["wall time, notebooks 01–06"].endswith("| 66 min 40 s | ≤ 60 min | **no** |")
    assert lines["wall time, notebooks 07–10 (more)"].endswith("| yes |")
    bad = goals_table(_results(d_r=(0.20, 0.05), ctrl=(0.28, 0.06)), None)
    lines = {ln.split(" | ")[0].lstrip("| "): ln for ln in bad.splitlines()}
    assert lines["D_R robust − its matched control's @ 0.5 (the declared radius)"].endswith("| **no** |")
    assert "not supported" in lines["D_R robust − its matched control's @ 0.25 (the paper's radius)"]
    assert not any(k.startswith("wall time") for k in lines)


def test_controls_table_sets_ours_beside_theirs():
    from tools.readme_blocks import controls_table

    rows = [{"dataset": "d_other", "seed": 0, "clean_acc": 0.2, "clean_ci95": [0.18, 0.22], "train_n": 6000},
            {"dataset": "relabel", "seed": 0, "clean_acc": 0.30, "train_n": 900},
            {"dataset": "relabel", "seed": 1, "clean_acc": 0.40, "train_n": 900},
            {"dataset": "standard", "seed": 0, "clean_acc": 0.67}]
    out = controls_table({"rows": rows})
    assert "| 20.0% [18.0, 22.0] | 6,000 | 67.3% (K. Jordan, ResNet-9 replication) |" in out
    assert "| 35.0% ± 7.1 (2 seeds) | 900 | 49.7% (E. Wallace, Distill 2019, ResNet-18) |" in out
    assert "standard" not in out and out.count("\n") == 4  # header, rule, two sets
