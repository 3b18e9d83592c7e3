"""Tests of aigfd_lite.bundle: a small real bundle written, read back bit-identically, and every damage refused."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from aigfd_lite.bundle import FORMAT, BundleError, Preprocessing, load_bundle, write_bundle
from aigfd_lite.detector import GMMDetector
from aigfd_lite.models import build_model, extract_features


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
    unknown = _copy(folder, tmp_path / "unknown")
    meta = json.loads((unknown / "bundle.json").read_text())
    meta["model"]["backbone"] = "no-such-net"
    (unknown / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="no-such-net"):
        load_bundle(unknown)


def test_backbone_defaults_to_resnet50_when_settings_lack_it(bundle_dir):
    meta = json.loads((bundle_dir[0] / "bundle.json").read_text())
    assert meta["model"] == {"backbone": "resnet50", "feature_dim": 16, "tasks": ["exif", "manipulation"]}


def test_build_bundle_from_a_run_records_its_settings(tmp_path, monkeypatch):
    from aigfd_lite import bundle as B
    from aigfd_lite import resolve, train

    model = build_model("random", feature_dim=16, seed=1).eval()
    model.train_config = {"feature_dim": 16, "tasks": ["exif", "manipulation"], "epochs": 3}
    monkeypatch.setattr(train, "load_trained", lambda cfg, run_name: model)
    images = np.random.default_rng(3).integers(0, 256, (60, 32, 32, 3), dtype=np.uint8)
    monkeypatch.setattr(B, "gmm_training_images", lambda cfg: images)
    cfg = resolve("lite", gmm_components=2, gmm_pca_components=3, input_size=32)
    folder = B.build_bundle(cfg, "ours", tmp_path / "b")
    loaded = load_bundle(folder)
    assert loaded.meta["model"]["backbone"] == "resnet50" and loaded.meta["source"]["run_name"] == "ours"
    assert loaded.meta["source"]["train_config"]["epochs"] == 3
    assert loaded.preprocessing.input_size == 32 and loaded.preprocessing.crop_scale == cfg.crop_scale
    assert loaded.detector.n_components == 2 and loaded.detector.pca_components == 3
    assert loaded.detector.threshold_rule == cfg.gmm_threshold_rule  # chapter 5's default rule, not a local one


def test_aigfd_bundle_without_a_trained_run_exits_2(tmp_path, monkeypatch):
    from aigfd_lite.cli import main

    monkeypatch.setenv("AIGFD_BUILD_DIR", str(tmp_path))
    import io

    err = io.StringIO()
    assert main(["bundle", "--profile", "lite"], stdout=io.StringIO(), stderr=err) == 2
    assert "no finished run" in err.getvalue() and "Traceback" not in err.getvalue()
