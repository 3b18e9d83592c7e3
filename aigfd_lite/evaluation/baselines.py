"""Baselines for chapter 6: other features for the same GMM (Table II) and a supervised binary detector (Table I).

* :class:`MobileNetV2Features`: torchvision's ImageNet MobileNetV2 (the weights ship offline in the
  ``mobilenet-v2-imagenet`` source), penultimate 1280-d features. In lite it stands in for the paper's semantic
  features (CLIP, FaRL), whose weights cannot be had offline; :func:`semantic_features_model` is the full-profile
  option for CLIP and raises a clear error where it cannot run.
* :func:`train_binary_baseline`: logistic regression on frozen features, real faces vs the faces of *one*
  generator: the simplest supervised detector on our features (not one of the paper's six competitors), to show
  the trap the paper argues supervised detectors fall into: learning one generator's traces. Its score is the
  log-odds of "real", so the paper's metrics apply unchanged (threshold 0). Its training faces, real and generated,
  take the same preprocessing path as every other image (:mod:`aigfd_lite.evaluation.protocol`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torchvision
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from ..fetch import files
from ..models import CLIP_MEAN, CLIP_STD

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def mobilenet_weights_path() -> Path:
    found = files("mobilenet-v2-imagenet", "*.pth")
    if not found:
        raise FileNotFoundError("the mobilenet-v2-imagenet source holds no .pth file (run python -m aigfd_lite.fetch)")
    return found[0]


class MobileNetV2Features(nn.Module):
    """ImageNet MobileNetV2 without its classifier: (N, 3, H, W) -> (N, 1280) after global average pooling.

    It takes the batches :func:`aigfd_lite.models.extract_features` makes (CLIP mean/std) and re-normalises them
    with ImageNet's statistics, which these weights were trained with.
    """

    feature_dim = 1280

    def __init__(self, weights: Optional[str | Path] = None) -> None:
        super().__init__()
        net = torchvision.models.mobilenet_v2(weights=None)
        state = torch.load(weights or mobilenet_weights_path(), map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
        self.body = net.features
        shift = (torch.tensor(CLIP_MEAN) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
        scale = torch.tensor(CLIP_STD) / torch.tensor(IMAGENET_STD)
        self.register_buffer("shift", shift.view(1, 3, 1, 1))
        self.register_buffer("scale", scale.view(1, 3, 1, 1))
        self.eval()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.scale + self.shift  # (p - clip_mean)/clip_std  ->  (p - imagenet_mean)/imagenet_std
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.body(x), 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def semantic_features_model(name: str = "clip") -> nn.Module:
    """Full-profile option: CLIP ViT-B/16 image features (the paper's "semantic features", Table II).

    Needs the ``open_clip_torch`` package and a download of OpenAI's weights (works on Colab). Offline, or without
    the package, it raises ``RuntimeError`` saying so; FaRL's weights are not on any registry this book can reach.
    """
    if name != "clip":
        raise RuntimeError(f"{name!r} features are not available in this book; FaRL needs its authors' checkpoint "
                           "(download it on Colab and wrap it like semantic_features_model('clip'))")
    try:
        # imported here, not at the top: `import aigfd_lite.evaluation` stays free of open_clip (optional)
        import open_clip
    except ImportError as err:
        raise RuntimeError("CLIP features need `pip install open_clip_torch` and a weight download (full profile, "
                           "e.g. on Colab); offline, Table II uses ImageNet MobileNetV2 features instead") from err
    try:
        model, _, _ = open_clip.create_model_and_transforms("ViT-B-16", pretrained="openai")
    except Exception as err:  # URLError, hub errors ...
        raise RuntimeError(f"cannot download CLIP's weights ({err}); offline, use MobileNetV2Features") from err

    class _Clip(nn.Module):
        feature_dim = 512

        def __init__(self) -> None:
            super().__init__()
            self.model = model.eval()

        def features(self, x: torch.Tensor) -> torch.Tensor:
            x = nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
            return self.model.encode_image(x)

    return _Clip()


class BinaryBaseline:
    """A fitted supervised detector: ``score_samples`` = log-odds of real, ``threshold_`` = 0."""

    threshold_ = 0.0

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        return self.pipeline.decision_function(np.asarray(X, dtype=np.float64))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.where(self.score_samples(X) >= self.threshold_, 1, -1)


def train_binary_baseline(real: np.ndarray, fake: np.ndarray, *, C: float = 1.0, seed: int = 2024) -> BinaryBaseline:
    """Logistic regression (standardised features, L2 penalty ``C``) of real (1) against one generator's faces (0)."""
    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"need at least two real and two generated training features, got {len(real)}, {len(fake)}")
    X = np.concatenate([real, fake]).astype(np.float64)
    y = np.r_[np.ones(len(real), dtype=int), np.zeros(len(fake), dtype=int)]
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000, random_state=seed,
                                                              class_weight="balanced"))
    return BinaryBaseline(pipe.fit(X, y))
