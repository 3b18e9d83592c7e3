"""The detector of chapters 5-9, defined once: which real faces it is fitted on, how they are preprocessed, how its
settings are chosen (with real faces only) and how it is fitted (Sec. II-B of the paper; chapter 5).

Chapter 5, chapters 6-8, the bundle of chapter 9 and ``aigfd score`` all get their detector from
:func:`chapter_detector`, so they share one:

1. **The faces**: :func:`detector_faces`, the GMM's real faces as the test sets see them (lite: the ``gmm`` part
   of the CelebA crops, :mod:`aigfd_lite.faces.celeba`, through :func:`aigfd_lite.images.as_tested`: down to the
   lite generators' common resolution, JPEG-encoded there as the CelebA photos were, then to the test size; full:
   the paper's 25,000 CelebA-HQ images, whole, resized to 224 px, streamed).
2. **The choice, written down before it is applied** (lite, ``gmm_k_candidates``): among every K of
   ``gmm_k_candidates`` and PCA dimension of ``gmm_pca_candidates``, the detector that best separates held-out
   real faces from manipulated copies of them (BLADES' proxy, :mod:`aigfd_lite.evaluation.proxy`; :func:`proxy_faces`),
   ties going to the smaller mixture. Full: nothing is chosen, the paper's K = 8 on the raw features. No
   generated face takes part either way.
3. **The detector**: :class:`~aigfd_lite.detector.GMMDetector` with the profile's threshold rule, fitted on all the
   GMM's faces.

Everything is deterministic: the same features give the same detector, threshold and scores in every chapter.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np
import pandas as pd

from ..detector import GMMDetector
from ..faces import CELEBA_JPEG_QUALITY as JPEG_QUALITY, celeba_faces
from .generators import AUTOENCODER_SIZE, DCGAN_SIZE
from ..models import ImageFiles
from .proxy import choose_by_proxy, manipulated_versions
from .testsets import PaperLayout, as_tested


@dataclass(frozen=True)
class Choice:
    """The detector's settings besides the threshold rule, and the criterion that chose them."""

    n_components: int
    pca_components: Optional[int]
    criterion: str  # "proxy" (lite: chosen among the candidates by aigfd_lite.evaluation.proxy) or "paper" (nothing chosen)

    def to_json(self) -> dict:
        return asdict(self)


def lite_native_size() -> int:
    """The common resolution of the lite protocol: the smallest native size of the lite generators."""
    return min(DCGAN_SIZE, AUTOENCODER_SIZE)


def view_of(cfg: Any) -> dict[str, Any]:
    """The :func:`~aigfd_lite.images.as_tested` arguments every image of profile ``cfg`` takes (full: none):
    lite goes down to the common resolution, through CelebA's JPEG encoder there, then to the test size."""
    lite = not cfg.data_root
    return dict(native_size=lite_native_size() if lite else None, test_size=cfg.test_size,
                jpeg_quality=JPEG_QUALITY if lite else None)


def lite_real_faces(cfg: Any, progress: bool = False) -> dict[str, Any]:
    """The lite CelebA crops by part (:meth:`aigfd_lite.faces.celeba.CelebAFaces.splits`): ``gmm`` (the first
    ``n_gmm_fit`` of that part), ``test`` and ``generator_train``, as :class:`~aigfd_lite.faces.celeba.CelebAFaces`."""
    parts = celeba_faces(cfg, progress=progress).splits()
    parts["gmm"] = parts["gmm"].subset(range(min(cfg.n_gmm_fit, len(parts["gmm"]))))
    return parts


def detector_faces(cfg: Any) -> Any:
    """The real faces chapter 5's detector is fitted on, preprocessed as every test image is (lite: a uint8 array
    of CelebA faces; full: an :class:`~aigfd_lite.image_files.ImageFiles` that feature extraction streams)."""
    if cfg.data_root:
        layout = PaperLayout(f"{cfg.data_root}/data")
        return ImageFiles(layout.gmm_train_paths(cfg.n_gmm_fit), cfg.test_size)

    return as_tested(lite_real_faces(cfg)["gmm"].images, **view_of(cfg))


def proxy_faces(cfg: Any, raw: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
    """Manipulated copies of the GMM's faces (row by row), through the same path: the proxy's outliers
    (:mod:`aigfd_lite.evaluation.proxy`). ``raw``: the GMM's crops if already loaded. Full: None (nothing is chosen)."""
    if not cfg.gmm_k_candidates:
        return None

    raw = lite_real_faces(cfg)["gmm"].images if raw is None else raw
    manipulated, _ = manipulated_versions(raw, crop_scale=cfg.crop_scale, seed=cfg.seed)
    return as_tested(manipulated, **view_of(cfg))


def candidates(cfg: Any) -> list[dict[str, Any]]:
    """The detectors the proxy chooses among: every K of ``gmm_k_candidates`` with every PCA dimension of
    ``gmm_pca_candidates`` (None: the raw features)."""
    return [{"n_components": k, "pca_components": p}
            for p in (cfg.gmm_pca_candidates or (cfg.gmm_pca_components,)) for k in cfg.gmm_k_candidates]


def choose(cfg: Any, X: np.ndarray, X_proxy: Optional[np.ndarray] = None) -> tuple[Choice, pd.DataFrame]:
    """Step 2 of the module docstring on the GMM's features ``X`` and their manipulated copies' ``X_proxy``:
    the choice and the table of candidates (best first)."""
    if not cfg.gmm_k_candidates:
        return Choice(cfg.gmm_components, cfg.gmm_pca_components, "paper"), pd.DataFrame()
    if X_proxy is None:
        raise ValueError("the lite detector is chosen by the proxy: pass the manipulated faces' features X_proxy "
                         "(aigfd_lite.evaluation.proxy_faces)")

    best, table = choose_by_proxy(X, X_proxy, candidates(cfg), reg_covar=cfg.gmm_reg_covar,
                                  random_state=cfg.gmm_random_state)
    return Choice(best["n_components"], best["pca_components"], "proxy"), table


def detector_params(cfg: Any, choice: Choice) -> dict[str, Any]:
    """:class:`~aigfd_lite.detector.GMMDetector` arguments: the profile's threshold rule and the chosen settings."""
    return dict(n_components=choice.n_components, reg_covar=cfg.gmm_reg_covar,
                pca_components=choice.pca_components, false_alarm=cfg.false_alarm,
                threshold_rule=cfg.gmm_threshold_rule, calibration_fraction=cfg.gmm_calibration_fraction,
                random_state=cfg.gmm_random_state)


def chapter_detector(cfg: Any, X: np.ndarray, X_proxy: Optional[np.ndarray] = None,
                     **overrides: Any) -> tuple[Any, Choice, pd.DataFrame]:
    """Chapter 5's detector fitted on the GMM faces' features ``X`` (:func:`detector_faces`), chosen with their
    manipulated copies' ``X_proxy`` (:func:`proxy_faces`; full: None): the fitted detector, the choice and its
    table. ``overrides`` (e.g. another threshold rule) go to the detector."""
    choice, table = choose(cfg, X, X_proxy)
    return GMMDetector(**{**detector_params(cfg, choice), **overrides}).fit(X), choice, table
