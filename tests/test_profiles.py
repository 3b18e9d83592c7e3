import dataclasses

import pytest

from aigfd_lite import PROFILES, Profile, resolve


def test_full_follows_the_paper():
    full = resolve("full")
    assert (full.batch_size, full.epochs, full.lr, full.input_size) == (256, 20, 1e-5, 224)
    assert (full.weight_decay, full.betas, full.eps, full.seed) == (1e-4, (0.9, 0.98), 1e-6, 42)
    assert (full.gmm_components, full.false_alarm, full.n_gmm_fit) == (8, 0.05, 25_000)
    assert full.thurstone == "paper" and full.face_size == 128 and full.crop_scale == 1.3


def test_full_sets_the_threshold_by_the_papers_rule_on_every_gmm_face():
    import numpy as np

    from aigfd_lite.detector.gmm import GMMDetector
    from aigfd_lite.evaluation.protocol import detector_settings

    full, lite = resolve("full"), resolve("lite")
    assert full.gmm_threshold_rule == "train-quantile" and lite.gmm_threshold_rule == "split-conformal"
    X = np.random.default_rng(0).normal(size=(200, 3))
    settings = detector_settings(full, n_components=2)
    det = GMMDetector(**settings).fit(X)
    assert det.calibration_index_ is None and len(det.train_scores_) == 200  # nothing held out
    assert det.threshold_ == np.quantile(det.train_scores_, full.false_alarm)
    held_out = GMMDetector(**{**settings, "threshold_rule": "split-conformal"}).fit(X)
    assert len(held_out.calibration_index_) == round(full.gmm_calibration_fraction * 200)


def test_lite_shrinks_sizes():
    lite, full = resolve("lite"), resolve("full")
    # Epochs are not compared: lite makes more passes over ~200 faces than full makes over 200,000 FDF faces.
    assert lite.input_size < full.input_size and lite.batch_size < full.batch_size
    assert lite.n_gmm_fit < full.n_gmm_fit and lite.n_test_per_generator < full.n_test_per_generator
    assert lite.device == "cpu"


def test_every_table_entry_is_a_setting():
    fields = {f.name for f in dataclasses.fields(Profile)}
    for name, table in PROFILES.items():
        assert set(table) <= fields, (name, set(table) - fields)


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown profile 'medium'.*\['full', 'lite'\]"):
        resolve("medium")


def test_unknown_setting_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown setting.*'epochz'"):
        resolve("lite", epochz=3)


def test_overrides_apply_and_empty_knobs_are_ignored():
    cfg = resolve("lite", epochs=7, data_root="", seed=None)
    assert cfg.epochs == 7 and cfg.data_root is None and cfg.seed == resolve("lite").seed


def test_profiles_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolve("lite").epochs = 1


def test_cache_path_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AIGFD_CACHE", str(tmp_path))
    assert resolve("lite").cache_path() == tmp_path
    assert resolve("lite", cache_dir=str(tmp_path / "x")).cache_path() == tmp_path / "x"


def test_full_keeps_resnet50_and_lite_uses_the_setting_its_validation_search_chose():
    import json
    from importlib.resources import files

    assert (resolve("full").backbone, resolve("full").init) == ("resnet50", "exif-lan")  # the paper's start
    lite = resolve("lite")
    assert lite.backbone == "mobilenet_v2" and lite.init == "imagenet"  # the only pretrained weights offline
    search = json.loads(files("aigfd_lite").joinpath("data/lite_pretext_search.json").read_text())
    from aigfd_lite.camera.simulator import SIMULATOR_VERSION

    assert search["camera_simulator"] == SIMULATOR_VERSION, "the search ran on an older camera simulator"
    chosen = [r for r in search["rows"] if r["name"] == search["chosen"] and r["tasks"] == "exif+manipulation"
              and r.get("camera_simulator") == SIMULATOR_VERSION and r["seed"] == lite.seed]
    assert len(chosen) == 1, "the search file names no (or more than one) chosen run at the profile's seed"
    for key in ("backbone", "init", "input_size", "epochs", "lr", "batch_size"):
        assert getattr(lite, key) == chosen[0][key], key
    assert lite.augment == chosen[0].get("augment")  # None unless the search chose an augmentation
    assert chosen[0]["manipulation_form"] == "fidelity"  # the profile has no BCE switch: the search kept Eq. 4


def test_the_ledger_of_test_face_scorings_is_complete_and_consistent():
    """Chapter 4 prints every earlier look at its held-out faces from this file: each needs its setting, what it
    measured (value and lower bound, lower bound below the value) and what followed from it."""
    import json
    from importlib.resources import files

    ledger = json.loads(files("aigfd_lite").joinpath("data/test_face_scorings.json").read_text())["scorings"]
    assert ledger, "no earlier scoring recorded"
    for look in ledger:
        assert look["setting"] and look["source"] and look["what_followed"]
        for metric in ("manip", "aperture", "exposure_time", "focal_length", "iso"):
            assert 0 <= look[f"{metric}_low"] <= look[metric] <= 1, (look["setting"], metric)
        assert look["manip"] <= look["manip_high"]


# ------------------------------------------------------------------------- every setting typed and range-checked
import importlib  # noqa: E402
import math  # noqa: E402

from aigfd_lite import ProfileError  # noqa: E402
from aigfd_lite.profiles import SPECS  # noqa: E402
from aigfd_lite.specs import Bool, Choice, Dict, Float, Folder, Int, OrNone, Tuple  # noqa: E402


def bad_values(spec, tmp_path):
    """(wrong type, out of range) examples for one spec, built from its metadata; a spec class this does not know
    fails the sweep, so a new kind of setting cannot go unchecked."""
    if isinstance(spec, OrNone):
        wrong, out = bad_values(spec.spec, tmp_path)
        return [w for w in wrong if w is not None], out
    if isinstance(spec, Int):
        out = [v for v in (None if spec.min is None else spec.min - 1, None if spec.max is None else spec.max + 1)
               if v is not None]
        return [1.5, float(spec.min if spec.min is not None else 2), True, "3", None], out
    if isinstance(spec, Float):
        out = [math.nan, math.inf]
        out += [] if spec.min is None else [spec.min - 0.5] + ([spec.min] if spec.open_min else [])
        out += [] if spec.max is None else [spec.max + 0.5] + ([spec.max] if spec.open_max else [])
        return ["0.5", True, None, [0.5]], out
    if isinstance(spec, Bool):
        return ["True", 1, 0, None], []
    if isinstance(spec, Choice):
        wrong = [3.5, ["cpu"], True] + ([] if None in spec.options() else [None])
        out = ["no-such-choice", str(tmp_path / "missing.pth")] + ([0] if spec.or_int else [])
        return wrong, out
    if isinstance(spec, Folder):
        return [3, 2.5, ["/tmp"]], ([str(tmp_path / "absent")] if spec.must_exist else [])
    if isinstance(spec, Tuple):
        item_wrong, item_out = bad_values(spec.item, tmp_path)
        n = spec.length or 1
        wrong = ["0.9, 0.98", 0.9] + [[w] * n for w in item_wrong[:1]]
        out = [[o] * n for o in item_out[:1]] + ([[0.5] * (n + 1)] if spec.length else [])
        return wrong, out
    if isinstance(spec, Dict):
        return [[1, 2], "a: 1", {1: "x"}], []
    raise AssertionError(f"the sweep does not know {type(spec).__name__}: teach bad_values about it")


def test_every_profile_field_has_a_spec():
    assert set(SPECS) == {f.name for f in dataclasses.fields(Profile)} - {"name"}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_setting_refuses_a_wrong_type_and_an_out_of_range_value(name, tmp_path):
    spec = SPECS[name]
    wrong, out = bad_values(spec, tmp_path)
    base = spec.spec if isinstance(spec, OrNone) else spec
    assert wrong and (out or isinstance(base, (Bool, Dict, Folder))), name  # a type; a range or choices
    for value in wrong + out:
        with pytest.raises(ProfileError) as err:
            resolve("lite", settings={name: value})
        message = str(err.value)
        assert repr(name) in message and "allowed is" in message, message  # names the setting and the rule
        assert repr(value) in message, message  # and the value


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_default_of_every_profile_passes_its_own_check(profile):
    cfg = resolve(profile)
    for name, spec in SPECS.items():
        assert spec.check(name, getattr(cfg, name)) == getattr(cfg, name), name


def test_choices_mirror_the_constants_of_the_modules_that_use_them():
    owned = {n: s for n, s in SPECS.items() if isinstance(s, Choice) and s.owner}
    assert {"backbone", "landmark_backend", "gmm_threshold_rule", "augment", "manipulations"} <= set(owned)
    for name, spec in owned.items():
        module, attr = spec.owner.split(":")
        assert set(spec.options()) == set(getattr(importlib.import_module(module), attr)), name


@pytest.mark.parametrize("settings, message", [
    (dict(epochs="x"), r"'epochs' = 'x' \(str\): allowed is an integer >= 1"),
    (dict(epochs=-3), r"'epochs' = -3 is out of range"),
    (dict(lr=-1.0), r"'lr' = -1.0 is out of range: allowed is a number > 0.0"),
    (dict(batch_size=0), r"'batch_size' = 0 is out of range: allowed is an integer >= 2"),
    (dict(seed=1.5), r"'seed' = 1.5 \(float\)"),
    (dict(epochs=2.0), r"'epochs' = 2.0 \(float\).*write 2"),  # whole floats are refused too, with the fix
    (dict(epochs=True), r"'epochs' = True \(bool\)"),
    (dict(lr="1e-4"), r"PyYAML reads that as a string"),
])
def test_the_issues_examples_are_refused_with_the_setting_value_and_rule(settings, message):
    with pytest.raises(ProfileError, match=message):
        resolve("lite", settings=settings)
    with pytest.raises(ProfileError, match=message):  # the same through a notebook knob
        resolve("lite", **settings)


def test_settings_arrive_as_meant_from_a_mapping_json_or_yaml_text():
    as_dict = resolve("lite", settings={"epochs": 1, "betas": [0.9, 0.99], "lr": 1e-4})
    for text in ('{"epochs": 1, "betas": [0.9, 0.99], "lr": 1e-4}', "{epochs: 1, betas: [0.9, 0.99], lr: 1.0e-4}",
                 "epochs: 1\nbetas: [0.9, 0.99]\nlr: 0.0001"):
        assert resolve("lite", settings=text) == as_dict, text
    assert as_dict.betas == (0.9, 0.99) and as_dict.epochs == 1  # a list becomes the tuple the profile holds
    assert resolve("lite", settings="") == resolve("lite", settings=None) == resolve("lite", settings={})
    assert resolve("lite", lr=1).lr == 1.0 and isinstance(resolve("lite", lr=1).lr, float)  # an int is a number
    assert resolve("full", settings={"accumulation_steps": 4}).accumulation_steps == 4
    assert resolve("lite", settings={"max_train_items": None}).max_train_items is None


@pytest.mark.parametrize("text", ["[1, 2]", "epochs", "{epochs: [1", "3"])
def test_settings_text_that_is_not_a_mapping_is_refused(text):
    with pytest.raises(ProfileError, match=r"parameter 'settings'"):
        resolve("lite", settings=text)


def test_a_setting_given_twice_must_agree():
    assert resolve("lite", seed=3, settings={"seed": 3}).seed == 3
    with pytest.raises(ProfileError, match=r"'seed' is given twice, 0 as a parameter and 7 in settings"):
        resolve("lite", seed=0, settings={"seed": 7})


def test_paths_must_exist_where_they_are_read(tmp_path):
    assert resolve("lite", data_root=str(tmp_path)).data_root == str(tmp_path)
    with pytest.raises(ProfileError, match=r"'data_root' = '.*nowhere': no such folder"):
        resolve("full", data_root=str(tmp_path / "nowhere"))
    with pytest.raises(ProfileError, match=r"-r NAME VALUE"):  # papermill -p data_root 2024 gives an int
        resolve("full", data_root=2024)
    (tmp_path / "w.pth").touch()
    assert resolve("lite", init=str(tmp_path / "w.pth")).init == str(tmp_path / "w.pth")
    assert resolve("lite", cache_dir=str(tmp_path / "new")).cache_dir == str(tmp_path / "new")  # created later
