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

    from aigfd_lite.detector import GMMDetector
    from aigfd_lite.protocol import detector_settings

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
    from aigfd_lite.camera import SIMULATOR_VERSION

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
