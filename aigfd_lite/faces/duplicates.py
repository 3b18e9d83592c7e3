"""The corpus's two filters (chapter 3): flat placeholder drawings, and near-duplicate face crops.

Both work on pixels only: :func:`looks_like_placeholder` on a whole photo, :func:`near_duplicates` on the crops of
every photo, through :func:`thumbnail_signature` (grey 32 px thumbnails, zero mean, unit norm).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from PIL import Image

DUPLICATE_CORRELATION = 0.95  # thumbnail correlation at or above which two crops count as one face photo
PLACEHOLDER_MAX_SATURATION = 0.04
PLACEHOLDER_MAX_ENTROPY = 4.0  # bits; photographs are above ~5, flat silhouettes below ~3.5


def looks_like_placeholder(image: np.ndarray) -> bool:
    """True for a flat grey drawing (the NBA "no photo" silhouette): no colour and few grey levels.

    Mean HSV saturation < 0.04 *and* grey-level entropy < 4 bits. A black-and-white photograph has no colour either,
    but its grey levels spread widely (einstein.jpg: 7.1 bits), so it is kept.
    """
    hsv = np.asarray(Image.fromarray(image).convert("HSV"), dtype=np.float64)
    saturation = hsv[..., 1].mean() / 255.0
    grey = np.asarray(Image.fromarray(image).convert("L"))
    p = np.bincount(grey.ravel(), minlength=256) / grey.size
    entropy = float(-(p[p > 0] * np.log2(p[p > 0])).sum())
    return saturation < PLACEHOLDER_MAX_SATURATION and entropy < PLACEHOLDER_MAX_ENTROPY


def thumbnail_signature(crops: np.ndarray, size: int = 32) -> np.ndarray:
    """Grey ``size`` x ``size`` thumbnails of ``crops`` (N, S, S, 3), each scaled to zero mean and unit norm."""
    thumbs = np.stack([
        np.asarray(Image.fromarray(c).convert("L").resize((size, size), Image.Resampling.BOX), dtype=np.float64)
        for c in crops
    ]).reshape(len(crops), -1)
    thumbs -= thumbs.mean(axis=1, keepdims=True)
    return thumbs / np.maximum(np.linalg.norm(thumbs, axis=1, keepdims=True), 1e-9)


def near_duplicates(crops: np.ndarray, min_correlation: float = DUPLICATE_CORRELATION) -> list[Optional[int]]:
    """For each crop, the index of an earlier *kept* crop it nearly equals (else None).

    Two crops are the same face photo when their grey 32 px thumbnails correlate above ``min_correlation``: a copy
    re-encoded, re-cropped by a few pixels or converted to grey stays above 0.97, while different people posed the
    same way against the same backdrop (the NBA headshots) stay below ~0.9.
    """
    signature = thumbnail_signature(crops)
    correlation = signature @ signature.T
    twins: list[Optional[int]] = []
    kept: list[int] = []
    for i in range(len(crops)):
        match = next((j for j in kept if correlation[i, j] >= min_correlation), None)
        twins.append(match)
        if match is None:
            kept.append(i)
    return twins
