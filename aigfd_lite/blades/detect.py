"""BLADES' two detectors on frozen pretext features (chapter 7, ``book/07_blades.md``).

* **BLADES-OC** (:func:`blades_oc`): one-class, a 10-component Gaussian mixture on L2-normalised features of real
  faces (:class:`aigfd_lite.detector.GMMDetector`), thresholded for a 5 % false alarm. ``threshold_rule="paper"``
  takes the 5th percentile of the mixture's own training log-likelihoods (BLADES' rule); ``"split_conformal"`` fits
  on part of the real faces and takes the threshold from the held-out rest, which bounds the false alarm on *unseen*
  real faces (the training percentile is optimistic: the mixture has seen those faces).
* **BLADES-BC** (:class:`BinaryHead`, :func:`train_blades_bc`): binary, ``MLP 768 -> 1536 -> ReLU -> 2`` on frozen,
  L2-normalised features, trained with one generator's faces (positive = AI-generated) and real faces, where the
  real faces the OC mixture finds least likely join the positive class as *pseudo-outliers*
  (:func:`pseudo_outliers`) to widen what "not a real face" covers. BLADES does not release this training code;
  the optimiser, epochs and class balancing here are ours (stated in the chapter).

Scores follow :mod:`aigfd_lite.evaluation.metrics`: higher = more real (OC: log-likelihood; BC: log-odds of "real").
"""
from __future__ import annotations

import inspect
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..detector import GMMDetector

THRESHOLD_RULES = ("paper", "split_conformal")


def l2_normalise(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def split_conformal_threshold(scores: np.ndarray, false_alarm: float) -> float:
    """The k-th smallest held-out score, ``k = floor(false_alarm (n + 1))``: an unseen real face (exchangeable
    with the held-out ones) falls below it with probability at most ``false_alarm`` (needs ``k >= 1``)."""
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    k = int(np.floor(false_alarm * (len(scores) + 1)))
    if k < 1:
        raise ValueError(f"{len(scores)} held-out faces cannot calibrate a {false_alarm:.0%} false alarm "
                         f"(need at least {int(np.ceil(1 / false_alarm)) - 1})")
    return float(scores[k - 1])


def blades_oc(train_features: np.ndarray, *, n_components: int = 10, false_alarm: float = 0.05,
              threshold_rule: str = "paper", calibration_fraction: float = 0.3, random_state: int = 2024,
              **detector_kwargs: Any) -> GMMDetector:
    """BLADES-OC fitted on real faces' features (``l2_normalize=True``; other GMMDetector arguments pass through).

    ``threshold_rule``: ``"paper"`` (5th percentile of the training log-likelihoods) or ``"split_conformal"``
    (fit on ``1 - calibration_fraction`` of the faces, threshold from the rest, see
    :func:`split_conformal_threshold`). The rule used is stored as ``threshold_rule_``.
    """
    if threshold_rule not in THRESHOLD_RULES:
        raise ValueError(f"threshold_rule must be one of {THRESHOLD_RULES}, got {threshold_rule!r}")
    accepted = set(inspect.signature(GMMDetector).parameters)
    kwargs = {k: v for k, v in detector_kwargs.items() if k in accepted}
    unknown = sorted(set(detector_kwargs) - accepted)
    if unknown:
        raise ValueError(f"GMMDetector has no argument(s) {unknown}")
    # The rule is passed to GMMDetector explicitly: its own default would hold out a share of the faces even under
    # the paper's rule. "split_conformal" splits here, once, and hands the calibration faces over.
    def make(rule: str) -> GMMDetector:
        return GMMDetector(n_components=n_components, l2_normalize=True, false_alarm=false_alarm,
                           threshold_rule=rule, random_state=random_state, **kwargs)

    train_features = np.asarray(train_features)
    if threshold_rule == "paper":  # every face fits; threshold: 5th percentile of the mixture's own scores
        detector = make("train-quantile").fit(train_features)
    else:
        order = np.random.default_rng(random_state).permutation(len(train_features))
        n_cal = int(round(calibration_fraction * len(train_features)))
        calibration = np.sort(order[:n_cal])
        detector = make("split-conformal").fit(train_features[np.sort(order[n_cal:])],
                                               X_calibration=train_features[calibration])
        detector.calibration_index_ = calibration
        # the same k-th smallest calibration score as GMMDetector's conformal_threshold, stated here for chapter 7
        detector.threshold_ = detector.offset_ = split_conformal_threshold(detector.calibration_scores_,
                                                                           false_alarm)
    detector.threshold_rule_ = threshold_rule
    return detector


def pseudo_outliers(detector: GMMDetector, real_features: np.ndarray) -> np.ndarray:
    """Boolean mask of the real faces the OC detector calls AI-generated (below its threshold)."""
    return detector.score_samples(real_features) < detector.threshold_


class BinaryHead(nn.Module):
    """BLADES-BC's classifier: Linear(d -> 2d) -> ReLU -> Linear(2d -> 2) on L2-normalised features."""

    def __init__(self, feature_dim: int = 768) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(feature_dim, 2 * feature_dim), nn.ReLU(), nn.Linear(2 * feature_dim, 2))
        self.threshold_ = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(F.normalize(x, dim=1))

    @torch.no_grad()
    def score_samples(self, features: np.ndarray) -> np.ndarray:
        """Log-odds of "real" (class 0) against "AI-generated" (class 1): higher = more real; threshold 0."""
        logits = self.eval()(torch.as_tensor(np.asarray(features), dtype=torch.float32))
        return (logits[:, 0] - logits[:, 1]).double().numpy()


def train_blades_bc(real: np.ndarray, fake: np.ndarray, outliers: Optional[np.ndarray] = None, *,
                    epochs: int = 100, lr: float = 1e-3, batch_size: int = 256, weight_decay: float = 1e-4,
                    seed: int = 2024) -> BinaryHead:
    """Train BLADES-BC: ``real`` (N_r, d) negatives, ``fake`` (N_f, d) and ``outliers`` (pseudo-outlier real faces)
    positives; cross-entropy with each class weighted by its inverse frequency (balanced), AdamW, ``epochs``."""
    torch.manual_seed(seed)
    outliers = np.zeros((0, real.shape[1])) if outliers is None else np.asarray(outliers)
    x = torch.as_tensor(np.concatenate([real, fake, outliers]), dtype=torch.float32)
    y = torch.as_tensor(np.r_[np.zeros(len(real)), np.ones(len(fake) + len(outliers))], dtype=torch.long)
    counts = torch.bincount(y, minlength=2).clamp(min=1).float()
    weight = counts.sum() / (2 * counts)
    model = BinaryHead(x.shape[1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=generator).split(batch_size):
            loss = F.cross_entropy(model(x[idx]), y[idx], weight=weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()
