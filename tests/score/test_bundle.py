"""Tests of aigfd_lite.score.bundle: a small real bundle written, read back bit-identically, and every damage refused."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from aigfd_lite.evaluation import recipe
from aigfd_lite.score.bundle import FORMAT, BundleError, Preprocessing, load_bundle, write_bundle
from aigfd_lite.detector.gmm import GMMDetector
from aigfd_lite.models.features import extract_features
from aigfd_lite.models.initialisation import build_model


def make_bundle(folder, seed: int = 0):
    """A bundle of a random-init network (feature_dim 16) and a GMM fitted on its features of random images."""
    model = build_model("random", feature_dim=16, seed=seed).eval()
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8)  # 20 calibrate the threshold
    features = extract_features(model, images, input_size=32, progress=False)
    detector = GMMDetector(n_components=2, pca_components=3, random_state=0).fit(features)
    prep = Preprocessing(min_face_px=40, face_size=64, input_size=32)
    write_bundle(folder, model, detector, prep, model_settings={"feature_dim": 16, "tasks": model.tasks},
                 source={"profile": "test"})
    return model, detector, images


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("b") / "bundle"
    return folder, *make_bundle(folder)


def test_bundle_round_trip_is_bit_identical(bundle_dir):
    folder, model, detector, images = bundle_dir
    bundle = load_bundle(folder)
    assert bundle.meta["format"] == FORMAT and bundle.meta["model"]["backbone"] == "resnet50"
    assert bundle.preprocessing == Preprocessing(min_face_px=40, face_size=64, input_size=32)
    for key, value in model.state_dict().items():
        assert torch.equal(bundle.model.state_dict()[key], value), key
    features = extract_features(bundle.model, images, input_size=32, progress=False)
    np.testing.assert_array_equal(bundle.detector.score_samples(features), detector.score_samples(features))
    assert bundle.threshold == detector.threshold_


def test_bundle_holds_no_pickle(bundle_dir):
    folder = bundle_dir[0]
    assert sorted(p.name for p in folder.iterdir()) == ["bundle.json", "detector.safetensors", "model.safetensors"]
    for name in ("model.safetensors", "detector.safetensors"):
        head = (folder / name).read_bytes()[:64]
        assert b"\x80\x04" not in head[:2] and head[8:9] == b"{", name  # a JSON header, not a pickle stream


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def _rewrite(folder, edit, rehash: bool = True):
    """Apply ``edit`` to ``folder``'s bundle.json record; ``rehash``: and record the new content hash (a careless
    tool, or a bug in a writer), so the field checks, not the hash, must catch it."""
    from aigfd_lite.score.bundle_format import HASH_FIELD, content_hash

    meta = json.loads((folder / "bundle.json").read_text())
    edit(meta)
    if rehash and all(np.isfinite(v) for v in [meta["detector"]["threshold"]] if isinstance(v, float)):
        meta[HASH_FIELD] = content_hash(meta)  # (no strict-JSON hash of a NaN: the reader refuses it anyway)
    (folder / "bundle.json").write_text(json.dumps(meta))  # json.dumps writes NaN / Infinity as Python does
    return folder


def test_missing_or_damaged_bundles_are_clear_errors(bundle_dir, tmp_path):
    folder = bundle_dir[0]
    with pytest.raises(BundleError, match="no detector bundle.*aigfd bundle"):
        load_bundle(tmp_path / "nowhere")
    partial = _copy(folder, tmp_path / "partial")
    (partial / "model.safetensors").unlink()
    with pytest.raises(BundleError, match="missing model.safetensors"):
        load_bundle(partial)
    altered = _copy(folder, tmp_path / "altered")
    data = bytearray((altered / "detector.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (altered / "detector.safetensors").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="does not match the sha256"):
        load_bundle(altered)
    foreign = _copy(folder, tmp_path / "foreign")
    (foreign / "bundle.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(BundleError, match="something-else"):
        load_bundle(foreign)
    broken = _copy(folder, tmp_path / "broken")
    (broken / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match="unreadable"):
        load_bundle(broken)
    unknown = _rewrite(_copy(folder, tmp_path / "unknown"), lambda meta: meta["model"].update(backbone="no-such-net"))
    with pytest.raises(BundleError, match="no-such-net"):
        load_bundle(unknown)


def test_backbone_defaults_to_resnet50_when_settings_lack_it(bundle_dir):
    meta = json.loads((bundle_dir[0] / "bundle.json").read_text())
    assert meta["model"] == {"backbone": "resnet50", "feature_dim": 16, "tasks": ["exif", "manipulation"]}


def test_build_bundle_from_a_run_records_its_settings(tmp_path, monkeypatch):
    from aigfd_lite.score import bundle as B
    from aigfd_lite import resolve
    import aigfd_lite.train as train  # build_bundle looks load_trained up in the train package

    model = build_model("random", feature_dim=16, seed=1).eval()
    model.train_config = {"feature_dim": 16, "tasks": ["exif", "manipulation"], "epochs": 3}
    monkeypatch.setattr(train, "load_trained", lambda cfg, run_name: model)
    images = np.random.default_rng(3).integers(0, 256, (60, 32, 32, 3), dtype=np.uint8)
    monkeypatch.setattr(recipe, "detector_faces", lambda cfg: images)
    monkeypatch.setattr("aigfd_lite.evaluation.detector_faces", lambda cfg: images)  # build_bundle's lookup
    cfg = resolve("lite", gmm_k_candidates=(), gmm_components=2, gmm_pca_components=3, input_size=32)
    folder = B.build_bundle(cfg, "ours", tmp_path / "b")
    loaded = load_bundle(folder)
    assert loaded.meta["model"]["backbone"] == "resnet50" and loaded.meta["source"]["run_name"] == "ours"
    assert loaded.meta["source"]["train_config"]["epochs"] == 3
    assert loaded.preprocessing.input_size == 32 and loaded.preprocessing.crop_scale == cfg.crop_scale
    assert loaded.detector.n_components == 2 and loaded.detector.pca_components == 3
    assert loaded.detector.threshold_rule == cfg.gmm_threshold_rule  # chapter 5's default rule, not a local one


def test_the_bundle_holds_chapter_5s_detector(tmp_path, monkeypatch):
    """One detector: a bundle built from a run has chapter 5's K and PCA dimension (chosen by the proxy on real faces
    and manipulated copies), threshold and scores on the same faces, and scoring sends a crop down chapter 5's path
    (common size, JPEG there, then test size)."""
    from aigfd_lite.score import bundle as B
    from aigfd_lite import resolve
    import aigfd_lite.train as train  # build_bundle looks load_trained up in the train package
    from aigfd_lite.models.features import extract_features

    model = build_model("random", feature_dim=16, seed=1).eval()
    model.train_config = {"feature_dim": 16, "tasks": ["exif", "manipulation"]}
    monkeypatch.setattr(train, "load_trained", lambda cfg, run_name: model)
    rng = np.random.default_rng(5)
    crops = rng.integers(0, 256, (90, 48, 48, 3), dtype=np.uint8)
    cfg = resolve("lite", gmm_k_candidates=(1, 2), gmm_pca_candidates=(2, 4), input_size=32, test_size=24)
    prep = B.preprocessing_of(cfg)
    assert (prep.common_size, prep.jpeg_quality, prep.test_size) == (recipe.lite_native_size(), 75, 24)
    faces = B.as_scored(crops, prep)
    from aigfd_lite.evaluation.testsets import as_tested

    assert np.array_equal(faces, as_tested(crops, native_size=prep.common_size, test_size=24, jpeg_quality=75))
    assert not np.array_equal(faces, as_tested(crops, native_size=prep.common_size, test_size=24))
    manipulated = B.as_scored(np.ascontiguousarray(crops[:, ::-1]), prep)  # stand-in copies, row by row
    monkeypatch.setattr(recipe, "detector_faces", lambda cfg: faces)
    monkeypatch.setattr(recipe, "proxy_faces", lambda cfg: manipulated)
    monkeypatch.setattr("aigfd_lite.evaluation.detector_faces", lambda cfg: faces)  # build_bundle's lookup
    monkeypatch.setattr("aigfd_lite.evaluation.proxy_faces", lambda cfg: manipulated)
    features = extract_features(model, faces, input_size=32, progress=False)
    proxy = extract_features(model, manipulated, input_size=32, progress=False)
    chapter5, choice, table = recipe.chapter_detector(cfg, features, proxy)
    chosen = table[table["chosen"]].iloc[0]
    assert choice.criterion == "proxy" and len(table) == 4
    assert (choice.n_components, choice.pca_components) == (chosen["n_components"], chosen["pca_components"])
    with pytest.raises(ValueError, match="X_proxy"):
        recipe.chapter_detector(cfg, features)  # lite chooses by the proxy: its faces are needed
    loaded = load_bundle(B.build_bundle(cfg, "ours", tmp_path / "b"))
    assert loaded.detector.n_components == chapter5.n_components
    assert loaded.detector.pca_components == chapter5.pca_components
    assert loaded.threshold == chapter5.threshold_
    assert np.array_equal(loaded.detector.score_samples(features), chapter5.score_samples(features))
    assert loaded.meta["source"]["detector_choice"] == choice.to_json()


def test_aigfd_bundle_without_a_trained_run_exits_2(tmp_path, monkeypatch):
    from aigfd_lite.cli import main

    monkeypatch.setenv("AIGFD_BUILD_DIR", str(tmp_path))
    import io

    err = io.StringIO()
    assert main(["bundle", "--profile", "lite"], stdout=io.StringIO(), stderr=err) == 2
    assert "no finished run" in err.getvalue() and "Traceback" not in err.getvalue()


def test_aigfd_bundle_refuses_a_folder_that_is_not_a_bundle(tmp_path, monkeypatch):
    """--out names a folder holding other files: exit 2 and a clear message, before any training run is read."""
    import io

    import aigfd_lite.train as train  # build_bundle looks load_trained up in the train package
    from aigfd_lite.cli import main

    def never(cfg, run_name):
        raise AssertionError("the run was loaded before the output folder was checked")

    monkeypatch.setattr(train, "load_trained", never)
    (tmp_path / "notes.txt").write_text("keep me")
    monkeypatch.chdir(tmp_path)
    err = io.StringIO()
    assert main(["bundle", "--profile", "lite", "--out", "."], stdout=io.StringIO(), stderr=err) == 2
    assert "not empty and is not a bundle" in err.getvalue() and "Traceback" not in err.getvalue()
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def _set(path: str, value):
    def edit(meta):
        *parents, last = path.split(".")
        node = meta
        for key in parents:
            node = node[key]
        node[last] = value
    return edit


@pytest.mark.parametrize("path, value, allowed", [
    ("detector.threshold", float("nan"), "not strict JSON"),
    ("detector.threshold", float("inf"), "not strict JSON"),
    ("detector.threshold", True, "detector.threshold is true; allowed: a finite number"),
    ("detector.threshold", "12", 'detector.threshold is "12"; allowed: a finite number'),
    ("preprocessing.face_size", 100000, "preprocessing.face_size is 100000; allowed: an integer from 8 to 2048"),
    ("preprocessing.input_size", -32, "preprocessing.input_size is -32; allowed: an integer from 8"),
    ("preprocessing.detect_max_side", 0, "preprocessing.detect_max_side is 0; allowed: an integer from 64"),
    ("preprocessing.alpha_background", [255, 255], "alpha_background is \\[255, 255\\]; allowed: a list of three"),
    ("preprocessing.crop_size", 3, "preprocessing.crop_size is not a field of the format"),
    ("detector.n_features_in", 17, "n_features_in is 17; allowed: the network's model.feature_dim, 16"),
    ("model.feature_dim", 0, "model.feature_dim is 0; allowed: an integer from 1"),
    ("model.tasks", ["exif", "exif"], "model.tasks is .*distinct tasks"),
    ("sha256", ["abc"], 'sha256 is \\["abc"\\]; allowed: an object giving the sha256'),
    ("detector.params.pca_components", 99, "pca_components is 99; allowed: null or an integer from 1 to"),
    ("detector.params.covariance_type", "round", 'covariance_type is "round"; allowed: one of "full"'),
    ("verdicts.below_threshold", "photograph", "verdicts is"),
])
def test_every_field_of_bundle_json_is_validated(bundle_dir, tmp_path, path, value, allowed):
    """A bad value (even one recorded with a matching content hash) is a BundleError naming field, value and rule."""
    bad = _rewrite(_copy(bundle_dir[0], tmp_path / "bad"), _set(path, value))
    with pytest.raises(BundleError, match=allowed):
        load_bundle(bad)


def test_an_edited_bundle_json_is_detected_by_its_content_hash(bundle_dir, tmp_path):
    edited = _rewrite(_copy(bundle_dir[0], tmp_path / "edited"), _set("detector.threshold", -1e9), rehash=False)
    with pytest.raises(BundleError, match="does not match its content_sha256"):
        load_bundle(edited)
    load_bundle(_rewrite(_copy(bundle_dir[0], tmp_path / "rehashed"), _set("detector.threshold", -1e9)))


def test_an_old_format_bundle_is_refused_with_a_rebuild_message(bundle_dir, tmp_path):
    def old(meta):
        meta["format"] = "aigfd-bundle/1"
        del meta["content_sha256"]
    with pytest.raises(BundleError, match="older aigfd_lite.*rebuild it with `aigfd bundle`"):
        load_bundle(_rewrite(_copy(bundle_dir[0], tmp_path / "old"), old, rehash=False))


def test_detector_arrays_must_match_bundle_json(bundle_dir, tmp_path):
    """Arrays re-hashed consistently but of the wrong shape (or NaN) are refused, not a traceback when scoring."""
    from safetensors.numpy import load_file, save_file

    from aigfd_lite.fetch import sha256_of

    for name, change, message in (("means", lambda a: a[:, :2], "means has shape"),
                                  ("weights", lambda a: a * np.nan, "weights holds NaN")):
        bad = _copy(bundle_dir[0], tmp_path / name)
        arrays = load_file(str(bad / "detector.safetensors"))
        arrays[name] = np.ascontiguousarray(change(arrays[name]))
        save_file(arrays, str(bad / "detector.safetensors"))
        _rewrite(bad, lambda meta: meta["sha256"].update({"detector.safetensors": sha256_of(bad / "detector.safetensors")}))
        with pytest.raises(BundleError, match=message):
            load_bundle(bad)
