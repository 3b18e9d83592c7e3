"""The detector of chapters 5-9, defined once: which real faces it is fitted on, how they are preprocessed, how its
settings are chosen (with real faces only) and how it is fitted (Sec. II-B of the paper; chapter 5).

Chapter 5, chapters 6-8, the bundle of chapter 9 and ``aigfd score`` all get their detector from
:func:`chapter_detector`, so they share one:

1. **The faces**: :func:`detector_faces`, the GMM's real faces as the test sets see them (lite: the first
   ``n_gmm_fit`` faces of the corpus's train split through :func:`aigfd_lite.evaluation.testsets.as_tested`, i.e. down to
   the common resolution of the lite generators and up to the test size; full: the paper's 25,000 CelebA-HQ
   images, whole, resized to 224 px, streamed).
2. **The choice, written down before it is applied**: with ``gmm_k_candidates`` (lite) the K whose mixture gives
   the highest mean log-likelihood to *held-out real faces* (3-fold cross-validation over the GMM's faces,
   :func:`aigfd_lite.detector.validation.choose_n_components`), the profile's PCA dimension; without (full) the paper's
   K = 8 on the raw features. No generated face takes part.
3. **The detector**: :class:`~aigfd_lite.detector.GMMDetector` with the profile's threshold rule, fitted on all the
   GMM's faces.

Everything is deterministic: the same features give the same detector, threshold and scores in every chapter.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Choice:
    """The detector's settings besides the threshold rule, and the criterion that chose them."""

    n_components: int
    pca_components: Optional[int]
    criterion: str  # "held-out likelihood" (chosen among gmm_k_candidates) or "paper" (nothing to choose)

    def to_json(self) -> dict:
        return asdict(self)


def lite_native_size() -> int:
    """The common resolution of the lite protocol: the smallest native size of the lite generators."""
    from .generators import AUTOENCODER_SIZE, DCGAN_SIZE

    return min(DCGAN_SIZE, AUTOENCODER_SIZE)


def view_of(cfg: Any) -> dict[str, Any]:
    """The :func:`~aigfd_lite.evaluation.testsets.as_tested` arguments every image of profile ``cfg`` takes (full: none)."""
    return dict(native_size=None if cfg.data_root else lite_native_size(), test_size=cfg.test_size)


def detector_faces(cfg: Any) -> Any:
    """The real faces chapter 5's detector is fitted on, preprocessed as every test image is (lite: a uint8 array;
    full: an :class:`~aigfd_lite.models.image_files.ImageFiles` that feature extraction streams)."""
    if cfg.data_root:
        from ..models import ImageFiles
        from .testsets import PaperLayout

        layout = PaperLayout(f"{cfg.data_root}/data")
        return ImageFiles(layout.gmm_train_paths(cfg.n_gmm_fit), cfg.test_size)
    from ..faces import build_corpus
    from .testsets import as_tested

    raw = build_corpus(cfg, progress=False).subset("train").images[: cfg.n_gmm_fit]
    return as_tested(raw, **view_of(cfg))


def choose(cfg: Any, X: np.ndarray) -> tuple[Choice, pd.DataFrame]:
    """Step 2 of the module docstring on the GMM's features ``X``: the choice and the table of candidates."""
    if not cfg.gmm_k_candidates:
        return Choice(cfg.gmm_components, cfg.gmm_pca_components, "paper"), pd.DataFrame()
    from ..detector import choose_n_components

    k, table = choose_n_components(X, cfg.gmm_k_candidates, pca_components=cfg.gmm_pca_components,
                                   reg_covar=cfg.gmm_reg_covar, random_state=cfg.gmm_random_state)
    return Choice(k, cfg.gmm_pca_components, "held-out likelihood"), table


def detector_params(cfg: Any, choice: Choice) -> dict[str, Any]:
    """:class:`~aigfd_lite.detector.GMMDetector` arguments: the profile's threshold rule and the chosen settings."""
    return dict(n_components=choice.n_components, reg_covar=cfg.gmm_reg_covar,
                pca_components=choice.pca_components, false_alarm=cfg.false_alarm,
                threshold_rule=cfg.gmm_threshold_rule, calibration_fraction=cfg.gmm_calibration_fraction,
                random_state=cfg.gmm_random_state)


def chapter_detector(cfg: Any, X: np.ndarray, **overrides: Any) -> tuple[Any, Choice, pd.DataFrame]:
    """Chapter 5's detector fitted on the GMM faces' features ``X`` (:func:`detector_faces`): the fitted
    detector, the choice and its table. ``overrides`` (e.g. another threshold rule) go to the detector."""
    from ..detector import GMMDetector

    choice, table = choose(cfg, X)
    return GMMDetector(**{**detector_params(cfg, choice), **overrides}).fit(X), choice, table
