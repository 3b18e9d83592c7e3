"""The four manipulations and a training item (chapter 3): "real", two eye/mouth flips, a vertical mouth flip, the
warp; each applied at a work size and resampled back like the published code."""
from __future__ import annotations

from typing import Optional, Union

import numpy as np
from PIL import Image

from .mask import blend_flip, draw_ratio
from .regions import CORNERS, check_image, check_landmarks, region_box
from .warp import piecewise_affine

MANIPULATIONS = ("eye_flip", "mouth_flip_h", "mouth_flip_v", "warp")
LABELS = ("real",) + MANIPULATIONS


# ----------------------------------------------------------------------------------------------- the four kinds
def resize_bilinear(image: np.ndarray, size: Union[int, tuple[int, int]]) -> np.ndarray:
    """Bilinear resize to ``size`` (int: square, or (H, W)) with Pillow, whose bilinear filter widens when shrinking
    (so it also antialiases)."""
    h, w = (size, size) if isinstance(size, (int, np.integer)) else size
    if image.shape[:2] == (h, w):
        return image.copy()
    return np.array(Image.fromarray(image).resize((int(w), int(h)), Image.BILINEAR))


def scale_landmarks(landmarks: np.ndarray, from_shape: tuple[int, ...], size: int) -> np.ndarray:
    """Landmarks of an image of ``from_shape`` mapped to a ``size`` x ``size`` resize (pixel centres kept)."""
    h, w = from_shape[:2]
    return (np.asarray(landmarks, np.float64) + 0.5) * np.array([size / w, size / h]) - 0.5


def _used_points(kind: str, eyes: str) -> tuple[int, ...]:
    if kind == "eye_flip":
        return CORNERS["right_eye"] + CORNERS["left_eye"] if eyes == "both" else CORNERS["eye"]
    if kind in ("mouth_flip_h", "mouth_flip_v"):
        return CORNERS["mouth"]
    return ()


def manipulate(image: np.ndarray, landmarks: Optional[np.ndarray], kind: str, rng: np.random.Generator, *,
               eyes: str = "both", vertical: str = "flip", resample: Union[None, int, tuple[int, int]] = None,
               warp_backend: str = "fast") -> np.ndarray:
    """Apply one manipulation ("real" is the identity) to an RGB uint8 face with (68, 2) (x, y) landmarks.

    eyes: "both" (our reading of the paper's eye flip: each eye's box flipped horizontally in place, one after
    the other, one ratio) or
    "one" (the published code: only points 42-45). vertical: "flip" (the paper: an up-down flip of the mouth box)
    or "rotate180" (the code). resample: None, a work size (e.g. 224), or (final size, work size): the image (and
    landmarks) go to the work size, are manipulated there and come back bilinearly, like the published code.
    warp_backend: see :func:`piecewise_affine` ("fast" is skimage's map, cached). Landmarks may be None for
    "real" and "warp".
    """
    check_image(image)
    if kind not in LABELS:
        raise ValueError(f"unknown manipulation {kind!r}; choose one of {LABELS}")
    if eyes not in ("both", "one"):
        raise ValueError(f"eyes must be 'both' (paper) or 'one' (published code), got {eyes!r}")
    if vertical not in ("flip", "rotate180"):
        raise ValueError(f"vertical must be 'flip' (paper) or 'rotate180' (published code), got {vertical!r}")
    used = _used_points(kind, eyes)
    if landmarks is None:
        if used:
            raise ValueError(f"{kind} needs landmarks")
        lm = None
    else:
        lm = check_landmarks(landmarks, image.shape, used)

    if resample is not None:
        final, work = (image.shape[:2], resample) if isinstance(resample, (int, np.integer)) else resample
        big = resize_bilinear(image, int(work))
        big_lm = None if lm is None else scale_landmarks(lm, image.shape, int(work))
        out = manipulate(big, big_lm, kind, rng, eyes=eyes, vertical=vertical, warp_backend=warp_backend)
        return resize_bilinear(out, final)

    if kind == "real":
        return image.copy()
    if kind == "warp":
        return piecewise_affine(image, rng, backend=warp_backend)
    ratio = draw_ratio(rng)
    if kind == "eye_flip":
        parts = ("right_eye", "left_eye") if eyes == "both" else ("eye",)
        out = image
        for part in parts:
            out = blend_flip(out, region_box(lm, part, image.shape), "horizontal", ratio)
        return out
    box = region_box(lm, "mouth", image.shape)
    direction = "horizontal" if kind == "mouth_flip_h" else ("vertical" if vertical == "flip" else "rotate180")
    return blend_flip(image, box, direction, ratio)


def make_training_image(image: np.ndarray, landmarks: Optional[np.ndarray], kind: str, rng: np.random.Generator,
                        symmetric: bool = True, work_size: int = 224, **options) -> np.ndarray:
    """One training item: manipulated at ``work_size`` and resampled back to the input size, as the published code
    does. ``symmetric=True`` (the default, ``cfg.symmetric_resampling``) resamples real faces the same way;
    ``symmetric=False`` is the code's asymmetry (real faces untouched). ``options`` go to :func:`manipulate`."""
    check_image(image)
    if kind == "real" and not symmetric:
        return image.copy()
    return manipulate(image, landmarks, kind, rng, resample=work_size, **options)


def sample_kind(rng: np.random.Generator, real_fraction: float = 0.5) -> str:
    """Draw a training label: "real" with probability ``real_fraction``, else one of the four uniformly."""
    if not 0.0 <= real_fraction <= 1.0:
        raise ValueError(f"real_fraction must lie in [0, 1], got {real_fraction}")
    if rng.random() < real_fraction:
        return "real"
    return MANIPULATIONS[int(rng.integers(len(MANIPULATIONS)))]
