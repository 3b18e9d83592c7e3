"""aigfd_lite.evaluation.baselines: MobileNetV2 features and the supervised binary baseline."""
import numpy as np
import pytest
import torch

from aigfd_lite.evaluation.baselines import (IMAGENET_MEAN, IMAGENET_STD, MobileNetV2Features, semantic_features_model,
                                  train_binary_baseline)
from aigfd_lite.models.features import extract_features
from aigfd_lite.models.network import normalise


@pytest.fixture(scope="module")
def mobilenet():
    return MobileNetV2Features()  # the real shipped ImageNet weights, strict load


def test_renormalisation_gives_imagenet_statistics(mobilenet):
    img = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (1, 2, 2, 3), dtype=np.uint8))
    x = normalise(img, input_size=2)  # CLIP statistics, as extract_features makes them
    y = x * mobilenet.scale + mobilenet.shift
    p = img.permute(0, 3, 1, 2).float() / 255
    expected = (p - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)


def test_mobilenet_features_shape(mobilenet):
    imgs = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    f = extract_features(mobilenet, imgs, input_size=64, batch_size=2, progress=False)
    assert f.shape == (3, 1280) and np.all(np.isfinite(f)) and np.all(f >= 0)  # after ReLU6 + pooling


def test_binary_baseline_separates_and_scores_log_odds():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(1, 1, (50, 4)), rng.normal(-1, 1, (50, 4))
    clf = train_binary_baseline(real, fake)
    assert (clf.predict(real) == 1).mean() > 0.8 and (clf.predict(fake) == -1).mean() > 0.8
    assert clf.threshold_ == 0.0 and clf.score_samples(real).mean() > 0 > clf.score_samples(fake).mean()
    with pytest.raises(ValueError):
        train_binary_baseline(real[:1], fake)


def test_semantic_features_error_offline():
    with pytest.raises(RuntimeError):
        semantic_features_model("farl")


class _FakeOpenClip:
    """A stand-in for the ``open_clip`` package: the real loading code runs, with a tiny local "CLIP"."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail, self.calls = fail, []

    def create_model_and_transforms(self, arch, pretrained=None):
        self.calls.append((arch, pretrained))
        if self.fail:
            raise self.fail

        class TinyClip(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = torch.nn.Linear(3, 512)
                self.seen = None

            def encode_image(self, x):
                self.seen = tuple(x.shape)
                return self.proj(x.mean(dim=(2, 3)))

        return TinyClip(), None, None


def test_clip_features_load_through_open_clip(monkeypatch):
    fake = _FakeOpenClip()
    monkeypatch.setitem(__import__("sys").modules, "open_clip", fake)
    model = semantic_features_model("clip")
    assert fake.calls == [("ViT-B-16", "openai")]  # the paper's CLIP: OpenAI's ViT-B/16 weights
    imgs = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    f = extract_features(model, imgs, input_size=64, batch_size=2, progress=False)
    assert f.shape == (3, 512) and np.all(np.isfinite(f))
    assert model.model.seen[1:] == (3, 224, 224)  # resized to CLIP's input size, whatever the profile's


def test_clip_download_failure_is_a_clear_error(monkeypatch):
    import urllib.error

    monkeypatch.setitem(__import__("sys").modules, "open_clip",
                        _FakeOpenClip(fail=urllib.error.URLError("no network")))
    with pytest.raises(RuntimeError, match="cannot download CLIP's weights.*MobileNetV2Features"):
        semantic_features_model("clip")


def test_clip_without_the_package_names_the_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "open_clip", None)  # import open_clip -> ImportError
    with pytest.raises(RuntimeError, match="pip install open_clip_torch"):
        semantic_features_model("clip")
