"""The one resampling every lite image goes through (chapters 5-6): :func:`as_tested` sends an image down to a
common native size, through a JPEG encoder there, and back up to the test size, so that no generator can be spotted
by its resolution or file format (the confound is explained in :mod:`aigfd_lite.evaluation.testsets`)."""
from __future__ import annotations

import io
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def resample(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 (N, size, size, 3), antialiased bilinear (the same filter both directions)."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    if images.shape[1:3] == (size, size):
        return images.copy()
    if not len(images):
        return np.zeros((0, size, size, 3), np.uint8)
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def through(images: np.ndarray, native_size: int, size: int) -> np.ndarray:
    """Down to ``native_size`` and back to ``size``: what a generator's output goes through on its way to the test."""
    return resample(resample(images, native_size), size)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """One uint8 RGB image encoded with PIL's JPEG at ``quality`` (4:2:0 chroma subsampling) and decoded."""
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"jpeg quality must be in 1..100, got {quality}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def recompress(images: np.ndarray, quality: Optional[int]) -> np.ndarray:
    """Each uint8 image of (N, H, W, 3) through :func:`jpeg_roundtrip` at ``quality``; None: unchanged."""
    if quality is None or not len(images):
        return images
    return np.stack([jpeg_roundtrip(image, quality) for image in images])


def as_tested(images: np.ndarray, *, native_size: Optional[int], test_size: int,
              control_resolution: bool = True, jpeg_quality: Optional[int] = None) -> np.ndarray:
    """The one preprocessing every lite image goes through: down to ``native_size``, JPEG at ``jpeg_quality`` there
    (the encoder every lite real face has been through; None: none), then to ``test_size`` (controlled; with
    ``native_size=None``: to ``test_size``, JPEG there). ``control_resolution=False`` is the uncontrolled test
    chapter 6 measures: straight to ``test_size`` and no common encoder, so each image keeps the traces of its own
    origin (a real photo its original JPEG, a generated face none)."""
    if not control_resolution:
        return resample(images, test_size)
    if native_size:
        return resample(recompress(resample(images, native_size), jpeg_quality), test_size)
    return recompress(resample(images, test_size), jpeg_quality)
