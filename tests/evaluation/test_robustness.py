"""Tests of aigfd_lite.evaluation.robustness: each processing condition does what it says, and the table is measured."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from aigfd_lite.evaluation import robustness as R
from aigfd_lite.detector.gmm import GMMDetector


def _faces(n: int = 6, size: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = np.stack([xx * 4, yy * 4, (xx + yy) * 2], axis=2).astype(float)
    return np.clip(base[None] + rng.normal(0, 20, (n, size, size, 3)), 0, 255).astype(np.uint8)


def test_jpeg_error_grows_as_quality_drops():
    image = _faces(1)[0]
    errors = [np.abs(R.jpeg(image, q).astype(int) - image).mean() for q in (95, 75, 50, 30)]
    assert errors == sorted(errors) and errors[0] > 0


def test_rescale_blur_noise_and_chain():
    image = _faces(1, size=64)[0]
    assert R.rescale(image, 0.5).shape == (32, 32, 3) and R.rescale(image, 2.0).shape == (128, 128, 3)
    assert R.rescale(image, 0.01).shape == (8, 8, 3)
    assert R.blur(image, 2.0).astype(float).std() < R.blur(image, 1.0).astype(float).std() < image.std()
    a = R.noise(image, 10.0, np.random.default_rng(1))
    np.testing.assert_array_equal(a, R.noise(image, 10.0, np.random.default_rng(1)))
    assert 6 < np.std(a.astype(float) - image) < 12
    assert R.social_network(image).shape == (48, 48, 3)


def test_process_every_condition_and_bad_input():
    images = _faces(3)
    for condition in R.CONDITIONS:
        out = R.process(images, condition)
        assert out.dtype == np.uint8 and len(out) == 3, condition
    np.testing.assert_array_equal(R.process(images, "clean"), images)
    with pytest.raises(ValueError, match="unknown condition"):
        R.process(images, "sepia")
    with pytest.raises(ValueError, match="uint8"):
        R.process(images.astype(float), "clean")


class _MeanColour(torch.nn.Module):
    """A 'network' whose feature is the mean and spread of each colour channel: enough to test the plumbing."""

    feature_dim = 6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean((2, 3)), x.std((2, 3))], dim=1)


def test_robustness_table_measures_false_alarms_on_processed_real_faces():
    real, fake = _faces(60, seed=1), _faces(60, seed=2) // 2  # the 'generated' faces are darker
    model = _MeanColour()
    from aigfd_lite.models.features import extract_features

    detector = GMMDetector(n_components=1, random_state=0).fit(extract_features(model, real, input_size=32,
                                                                                progress=False))
    table = R.robustness_table(model, detector, {"dark": (real, fake)}, input_size=32,
                               conditions=["clean", "noise sigma 10", "blur sigma 2"])
    assert list(table.index.get_level_values(0)) == ["clean", "noise sigma 10", "blur sigma 2"]
    assert table.loc[("clean", "dark"), "auc"] > 0.99 and table.loc[("clean", "dark"), "false_alarm"] <= 0.1
    # blur removes the spread the detector learned: processed real faces become false alarms
    assert table.loc[("blur sigma 2", "dark"), "false_alarm"] > 0.5
