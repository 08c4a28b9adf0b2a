"""The profile's recipes: train_config gives the TrainConfigs it gave before the profile held them
(tests/train_configs.json, computed by the code of then), dotted -p keys, old flat keys as
aliases, and to_dict / from_dict round trips (results.json's "config" stays readable)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import REPO

from advlib import config, dotted
from advlib.config import Recipe, get_profile
from advlib.recipes import SET_RECIPE, SOURCE_ROLES, train_config

PINNED = json.loads((REPO / "tests" / "train_configs.json").read_text())


def _as_pinned(cfg) -> dict:
    """A TrainConfig as the pin holds it: adv_norm came later (notebook 10's L∞ training), and the
    configs of then are its default "l2" (a checkpoint without the key reads the same way), so it is
    left out where it is "l2" rather than written into a file computed by the code of then."""
    d = dataclasses.asdict(cfg)
    if d.get("adv_norm") == "l2":
        del d["adv_norm"]
    return d


def configs(prof) -> dict:
    out = {}
    for role in SOURCE_ROLES:
        try:
            out[role] = _as_pinned(train_config(prof, role))
        except ValueError:
            out[role] = None
    for name in config.ALL_SETS + config.SUBSET_VARIANTS + config.MATCHED_CONTROLS:
        out["dataset:" + name] = _as_pinned(train_config(prof, "dataset", name))
    return out


@pytest.mark.parametrize("name", config.PROFILE_NAMES)
def test_every_profile_trains_every_role_and_set_as_before(name):
    assert PINNED["profiles"].keys() == set(config.PROFILE_NAMES)
    assert configs(get_profile(name, **CHANGED_SINCE_PIN.get(name, {}))) == PINNED["profiles"][name]


@pytest.mark.parametrize("case", PINNED["overrides"], ids=lambda c: f"{c['profile']}-{'-'.join(c['overrides'])}")
def test_old_flat_keys_set_what_they_set_before(case):
    then = config.apply(get_profile(case["profile"]), CHANGED_SINCE_PIN.get(case["profile"], {}))
    with pytest.warns(DeprecationWarning):
        prof = config.apply(then, case["overrides"])
    assert configs(prof) == case["train_configs"]


def test_every_set_has_a_recipe():
    assert set(SET_RECIPE) == set(config.ALL_SETS + config.SUBSET_VARIANTS + config.MATCHED_CONTROLS)


@pytest.mark.parametrize("name", config.PROFILE_NAMES)
def test_to_dict_round_trips(name):
    prof = get_profile(name)
    assert config.from_dict(prof.to_dict()) == prof
    assert config.from_dict(json.loads(prof.to_json())) == prof  # lists in JSON, tuples again
    assert prof.to_dict()["sources"]["standard"]["epochs"] == prof.sources.standard.epochs


# What each profile changed since the pin was taken (the values the profile had then): a flat config
# written then must read as the profile of then, i.e. today's with these fields set back.
CHANGED_SINCE_PIN = {"cpu": {"n_val": 0, "claim_eps": 0.25, "invert_n": 3000, "sets.rnr.augment": "", "construct_n": 6000,
                             "apgd_targets": 9, "apgd_steps": 100}}


@pytest.mark.parametrize("name", config.PROFILE_NAMES)
def test_a_flat_config_of_an_older_run_reads_as_the_same_profile(name):
    assert config.from_dict(PINNED["flat_configs"][name]) == get_profile(name, **CHANGED_SINCE_PIN.get(name, {}))


def test_dotted_keys_and_nested_objects():
    cpu = get_profile("cpu", **{"sources.standard.epochs": "7", "sets.rnr.augment": "crop,flip",
                                "train_seeds": "1,2,3", "eval_sweep": "0,0.25,0.5"})
    assert (cpu.sources.standard.epochs, cpu.sets.rnr.augment) == (7, "crop,flip")
    assert (cpu.train_seeds, cpu.eval_sweep, cpu.seeds) == ((1, 2, 3), (0.0, 0.25, 0.5), [0, 1, 2, 3])
    assert train_config(cpu, "dataset", "control_rnr").augment == "crop,flip"  # the control follows its sets
    nested = get_profile("cpu", sources={"standard": {"epochs": 7}}, sets={"rnr": {"augment": "crop,flip"}})
    assert nested.sources == cpu.sources and nested.sets == cpu.sets
    assert config.load("cpu", '{"sources": {"robust": {"adv_eps": 1.0}}, "sets.det.lr": 0.01}').sets.det.lr == 0.01
    assert get_profile("cpu", datasets="d_rand, d_det").datasets == ("d_rand", "d_det")
    assert get_profile("cpu", datasets=["d_rand"], train_seeds=[]).dataset_list == ["d_rand"]
    whole = get_profile("smoke", **{"sets.rand": Recipe(epochs=3)}).sets.rand
    assert whole == Recipe(epochs=3)


@pytest.mark.parametrize("key, value, match", [
    ("sources.standard.epoch", "3", r"'sources.standard.epoch'.*valid keys of sources.standard: arch, epochs, lr"),
    ("sources.teacher.epochs", "3", r"'sources.teacher.epochs'.*valid keys of sources: standard, robust, targeted"),
    ("epochz", "3", r"'epochz'.*valid keys at the top level: cifar_source"),
    ("sets.rnr.epochs", "three", r"'sets.rnr.epochs': expected int"),
    ("sets.rnr.epochs", "-1", r"sets.rnr.epochs must be >= 0"),
    ("sets.det.augment", "crop,zoom", r"sets.det.augment"),
    ("sets.rand.schedule", "cosine", r"sets.rand.schedule must be one of step\|onecycle\|constant"),
    ("sources.robust.adv_eps", "0", r"sources.robust.adv_eps must be > 0"),
    ("sources.standard.arch", "vgg", r"sources.standard.arch"),
    ("train_seeds", "1,x", r"'train_seeds': 'x' is not a finite integer"),
    ("eval_sweep", "0,abc", r"'eval_sweep': 'abc' is not a finite number"),
    ("datasets", "d_robust,d_imagenet", r"datasets: unknown \['d_imagenet'\]"),
    ("sources", "3", r"'sources' is a group"),
    ("sources.standard.epochs.x", "3", r"sources.standard.epochs is a value"),
])
def test_bad_keys_and_values_name_the_key(key, value, match):
    with pytest.raises(ValueError, match=match):
        get_profile("cpu", **{key: value})


def test_old_keys_warn_naming_the_new_ones_and_errors_name_the_old_key():
    with pytest.warns(DeprecationWarning, match="'source_epochs' is deprecated.*sources.standard.epochs"):
        assert get_profile("cpu", source_epochs="3").sources.standard.epochs == 3
    with pytest.warns(DeprecationWarning, match="sets.rnr.epochs, sets.rand.epochs, sets.det.epochs, sets.relabel"):
        assert {r.epochs for r in get_profile("cpu", epochs=4).sets.__dict__.values()} == {4}
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match=r"sets.rand.epochs.*old key 'rand_det_epochs'"):
        get_profile("cpu", rand_det_epochs=-1)
    with pytest.warns(DeprecationWarning, match="origin"):
        assert get_profile("cpu", dataset_source="released").origin == "released"
    # an explicit new key wins over an old broad one, whatever the order
    with pytest.warns(DeprecationWarning):
        assert get_profile("cpu", **{"sets.rnr.epochs": 9, "epochs": 4}).sets.rnr.epochs == 9
    # a broad old key does not give the targeted sets a model of their own
    with pytest.warns(DeprecationWarning):
        assert get_profile("smoke", lr=0.2).sources.targeted is None


def test_targeted_source_none_or_epochs_zero():
    smoke = get_profile("smoke")
    assert smoke.sources.targeted is None and not smoke.sources.has_targeted
    off = get_profile("smoke", **{"sources.targeted.epochs": 0})
    assert not off.sources.has_targeted and off.sources.targeted == smoke.sources.standard.replace(epochs=0)
    on = get_profile("smoke", **{"sources.targeted.epochs": 3})
    assert train_config(on, "targeted") == dataclasses.replace(train_config(smoke, "standard"), epochs=3)
    with pytest.raises(ValueError, match="no sources.targeted recipe"):
        train_config(off, "targeted")


def test_keys_and_aliases_are_known():
    keys = config.keys()
    assert "sources.standard.epochs" in keys and "sets.relabel.adv_random_start" in keys and "seed" in keys
    assert all(t in keys for targets in config.ALIASES.values() for t in targets)
    assert not set(config.ALIASES) & set(keys)  # an old key never shadows a new one
    assert config.is_key("rnr_augment") and not config.is_key("sources.standard")


def test_lists_given_as_text_to_the_dataclass_are_tuples():
    prof = dataclasses.replace(get_profile("smoke"), eval_sweep="0.25", train_seeds="3")
    assert (prof.eval_sweep, prof.seeds, prof.sweep) == ((0.25,), [0, 3], [0.25])


def test_recipe_line_and_profile_tree():
    from advlib.__main__ import profile_tree

    assert Recipe(epochs=3, augment="").line() == "epochs=3 lr=0.1 schedule=step augment='' weight_decay=0.0005"
    assert "adv_eps=0.5" in get_profile("cpu").sources.robust.line()
    text = profile_tree(get_profile("cpu"))
    lines = text.splitlines()
    assert lines[0] == "cpu" and any(line.split()[:2] == ["standard", "epochs=100"] for line in lines)
    assert "train_seeds" in text and "1,2" in text
    assert "none" in profile_tree(get_profile("smoke")).split("targeted", 1)[1].splitlines()[0]
    assert dotted.text(()) == "''"
