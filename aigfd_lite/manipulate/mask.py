"""The soft mask and the flips of the local manipulations (chapter 3, the paper's Fig. 3): box -> Gaussian blur ->
erosion with a 15x15 ellipse -> Gaussian blur -> max 1 -> times a ratio from {0.75, 1, 1, 1}; the box flipped in
place and pasted back through the mask."""
from __future__ import annotations

import functools
from typing import Optional

import numpy as np
from scipy import ndimage as ndi

from .regions import Box, _check_box

MASK_RATIOS = (0.75, 1.0, 1.0, 1.0)
ERODE_SIZE = 15
#: The notes give no blur size; we use the sigma OpenCV derives for a 15x15 kernel, cut at radius 7.
BLUR_SIGMA = 2.6
BLUR_RADIUS = 7


# ----------------------------------------------------------------------------------------------- soft mask
@functools.lru_cache(maxsize=1)
def _ellipse() -> np.ndarray:
    # imported here, not at the top: `import aigfd_lite.blades` stays free of skimage
    from skimage.morphology import ellipse

    return ellipse(ERODE_SIZE // 2, ERODE_SIZE // 2).astype(bool)  # 15x15


def _erode_ellipse(m: np.ndarray) -> np.ndarray:
    """Grey erosion with the 15x15 ellipse, pixels outside ignored: ``ndi.grey_erosion(m, footprint=ellipse,
    mode="constant", cval=inf)`` done fast. The ellipse is a stack of centred row segments, so the erosion is the
    minimum over its rows of shifted 1-D minimum filters (4 distinct widths), about 15x faster; tested equal."""
    footprint = _ellipse()
    r = footprint.shape[0] // 2
    h, w = m.shape
    padded = np.pad(m, r, constant_values=np.inf)
    out = np.full(m.shape, np.inf)
    by_width: dict[int, np.ndarray] = {}
    for dy, width in enumerate(footprint.sum(axis=1)):
        if width not in by_width:
            by_width[width] = ndi.minimum_filter1d(padded, int(width), axis=1)
        np.minimum(out, by_width[width][dy:dy + h, r:r + w], out=out)
    return out


@functools.lru_cache(maxsize=4096)
def _mask_patch(window: tuple[int, int], inner: Box) -> np.ndarray:
    """The normalised soft mask inside a window around the box (cached: it depends only on these shapes)."""
    canvas = np.zeros(window, np.float64)
    x0, y0, x1, y1 = inner
    canvas[y0:y1, x0:x1] = 1.0
    truncate = BLUR_RADIUS / BLUR_SIGMA
    # 'mirror' is OpenCV's default border (reflect-101); the erosion ignores pixels outside (cval = max).
    m = ndi.gaussian_filter(canvas, BLUR_SIGMA, mode="mirror", truncate=truncate)
    m = _erode_ellipse(m)
    m = ndi.gaussian_filter(m, BLUR_SIGMA, mode="mirror", truncate=truncate)
    peak = m.max()
    if peak <= 0:  # a box thinner than the erosion: nothing survives
        return np.zeros(window, np.float32)
    out = (m / peak).astype(np.float32)
    out.flags.writeable = False
    return out


def _mask_window(shape: tuple[int, ...], box: Box) -> tuple[tuple[slice, slice], np.ndarray]:
    """(slices into the image, mask patch) with the mask's whole support inside the window.

    The window reaches 2 blur radii + the erosion radius beyond the box (clipped to the image), so the patch equals
    the same filters run on the full image.
    """
    _check_box(box, shape)
    h, w = shape[:2]
    x0, y0, x1, y1 = box
    pad = 2 * BLUR_RADIUS + ERODE_SIZE // 2 + 2
    wx0, wy0, wx1, wy1 = max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)
    patch = _mask_patch((wy1 - wy0, wx1 - wx0), (x0 - wx0, y0 - wy0, x1 - wx0, y1 - wy0))
    return (slice(wy0, wy1), slice(wx0, wx1)), patch


def draw_ratio(rng: np.random.Generator) -> float:
    """The blend strength: 0.75 with probability 1/4, else 1."""
    return float(MASK_RATIOS[int(rng.integers(len(MASK_RATIOS)))])


def soft_mask(shape: tuple[int, ...], box: Box, ratio: Optional[float] = None,
              rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Soft blending mask (H, W) float32 for ``box``: blur -> 15x15 ellipse erosion -> blur -> max 1 -> x ratio.

    ``ratio`` None draws it from {0.75, 1, 1, 1} with ``rng``.
    """
    if ratio is None:
        if rng is None:
            raise ValueError("soft_mask needs a ratio or an rng to draw it from {0.75, 1, 1, 1}")
        ratio = draw_ratio(rng)
    mask = np.zeros(shape[:2], np.float32)
    window, patch = _mask_window(shape, box)
    mask[window] = patch * np.float32(ratio)
    return mask


# ----------------------------------------------------------------------------------------------- flips
def flip_region(image: np.ndarray, box: Box, direction: str) -> np.ndarray:
    """A copy of ``image`` with the box flipped in place: "horizontal", "vertical" (a true up-down flip, the
    paper's) or "rotate180" (the published code's "vertical": a flip about both axes)."""
    _check_box(box, image.shape)
    x0, y0, x1, y1 = box
    out = image.copy()
    region = image[y0:y1, x0:x1]
    if direction == "horizontal":
        out[y0:y1, x0:x1] = region[:, ::-1]
    elif direction == "vertical":
        out[y0:y1, x0:x1] = region[::-1]
    elif direction == "rotate180":
        out[y0:y1, x0:x1] = region[::-1, ::-1]
    else:
        raise ValueError(f"unknown flip direction {direction!r}; choose horizontal, vertical or rotate180")
    return out


def blend_flip(image: np.ndarray, box: Box, direction: str, ratio: float) -> np.ndarray:
    """out = m * flipped + (1 - m) * original, computed only inside the mask's window (Fig. 3's last step)."""
    window, patch = _mask_window(image.shape, box)
    flipped = flip_region(image, box, direction)
    m = (patch * np.float32(ratio))[..., None]
    out = image.copy()
    mixed = m * flipped[window].astype(np.float32) + (1 - m) * image[window].astype(np.float32)
    out[window] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return out

