"""Does the detector survive what happens to photos online? Processing conditions and their metrics (chapter 8).

Each condition maps one uint8 (H, W, 3) face to a processed one, deterministically (noise is seeded):

* JPEG recompression at quality 95, 75, 50 and 30 (Pillow's encoder, 4:2:0 chroma subsampling);
* down-scaling to 1/2 and 1/4 of the side and up-scaling 2x (Pillow's bicubic filter); the detector's own resize to
  its input size then follows, as it would for an uploaded image of that size;
* Gaussian blur (sigma 1 and 2 px) and additive Gaussian noise (sigma 5 and 10 grey levels, clipped);
* a social-network-like chain: resize to 3/4 of the side (Lanczos), JPEG quality 75, then a second JPEG at quality
  85 when the picture is shared again.

:func:`robustness_table` applies every condition to the real *and* the generated test faces, and measures with the
clean detector (fitted on unprocessed real faces): accuracy, AUC, AP and the false-alarm rate on processed real
faces (the fraction of real faces called AI-generated), with :func:`aigfd_lite.evaluation.metrics.detection_metrics`.
"""
from __future__ import annotations

import io
from typing import Callable, Mapping, Optional

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter

from .metrics import detection_metrics
from ..models import extract_features

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode as JPEG at ``quality`` and decode again."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def rescale(image: np.ndarray, factor: float, resample=Image.Resampling.BICUBIC) -> np.ndarray:
    """Resize by ``factor`` (each side rounded, at least 8 px)."""
    h, w = image.shape[:2]
    size = (max(8, round(w * factor)), max(8, round(h * factor)))
    return np.asarray(Image.fromarray(image).resize(size, resample), dtype=np.uint8)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` px (Pillow's GaussianBlur ``radius`` is the sigma)."""
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius=sigma)), dtype=np.uint8)


def noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise of ``sigma`` grey levels, rounded and clipped to 0..255."""
    noisy = image.astype(np.float64) + rng.normal(0.0, sigma, image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def social_network(image: np.ndarray) -> np.ndarray:
    """Resize to 3/4 of the side (Lanczos), JPEG quality 75, and JPEG quality 85 once more (a re-share)."""
    return jpeg(jpeg(rescale(image, 0.75, Image.Resampling.LANCZOS), 75), 85)


#: The conditions in the order the chapter reports them; "clean" is the unprocessed baseline.
CONDITIONS: dict[str, Transform] = {
    "clean": lambda im, rng: im.copy(),
    "JPEG q95": lambda im, rng: jpeg(im, 95),
    "JPEG q75": lambda im, rng: jpeg(im, 75),
    "JPEG q50": lambda im, rng: jpeg(im, 50),
    "JPEG q30": lambda im, rng: jpeg(im, 30),
    "down 1/2": lambda im, rng: rescale(im, 0.5),
    "down 1/4": lambda im, rng: rescale(im, 0.25),
    "up 2x": lambda im, rng: rescale(im, 2.0),
    "blur sigma 1": lambda im, rng: blur(im, 1.0),
    "blur sigma 2": lambda im, rng: blur(im, 2.0),
    "noise sigma 5": lambda im, rng: noise(im, 5.0, rng),
    "noise sigma 10": lambda im, rng: noise(im, 10.0, rng),
    "social network": lambda im, rng: social_network(im),
}


def process(images: np.ndarray, condition: str, seed: int = 2024) -> np.ndarray:
    """Apply ``condition`` (a key of :data:`CONDITIONS`) to every image of (N, H, W, 3) uint8 ``images``."""
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; choose one of {list(CONDITIONS)}")
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    rng = np.random.default_rng(seed)
    return np.stack([CONDITIONS[condition](image, rng) for image in images]) if len(images) else images.copy()


def robustness_table(model, detector, test_sets: Mapping[str, tuple[np.ndarray, np.ndarray]], *, input_size: int,
                     conditions: Optional[list[str]] = None, seed: int = 2024) -> pd.DataFrame:
    """One row per (condition, test set): acc, auc, ap, false_alarm (processed real faces called AI-generated) and
    tpr (processed generated faces caught), scored by the clean ``detector`` at its threshold."""
    rows = []
    for condition in conditions or list(CONDITIONS):
        for name, (real, fake) in test_sets.items():
            scores = [detector.score_samples(extract_features(model, process(images, condition, seed + k),
                                                              input_size=input_size, progress=False))
                      for k, images in enumerate((real, fake))]
            m = detection_metrics(scores[0], scores[1], detector.threshold_)
            rows.append({"condition": condition, "test set": name, "acc": m["acc"], "auc": m["auc"],
                         "ap": m["ap"], "false_alarm": m["fpr"], "tpr": m["tpr"]})
    return pd.DataFrame(rows).set_index(["condition", "test set"])
