"""Where a local manipulation goes (chapter 3, the paper's Fig. 3): input checks, the corner landmarks of each part,
and the dilated corner line's box."""
from __future__ import annotations

import numpy as np

#: Corner landmarks (iBUG 68 order, 0-based), named from the subject's side like aigfd_lite.faces.landmarks: the subject's
#: right eye (36-41) is on the image's left. "eye" is the published code's single eye (42/45).
CORNERS = {"right_eye": (36, 39), "left_eye": (42, 45), "eye": (42, 45), "mouth": (48, 54)}
MARGIN_PX = 5

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1), x1/y1 exclusive


# ----------------------------------------------------------------------------------------------- input checks
def check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected an RGB uint8 image of shape (H, W, 3), got a {desc}")
    if min(image.shape[:2]) < 8:
        raise ValueError(f"image too small to manipulate: {image.shape[:2]}")


def check_landmarks(landmarks: np.ndarray, image_shape: tuple[int, ...], used: tuple[int, ...] = ()) -> np.ndarray:
    """Landmarks as float (68, 2) (x, y); NaN anywhere or a used point outside the image is a ValueError.

    Only the points a manipulation uses (``used``) must lie inside the image: jaw points of a tight crop may not.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks of shape (68, 2) in (x, y) order, got shape {lm.shape}")
    if not np.all(np.isfinite(lm)):
        raise ValueError(f"landmarks contain NaN or inf at points {np.flatnonzero(~np.isfinite(lm).all(1)).tolist()}")
    h, w = image_shape[:2]
    pts = lm[list(used)]
    outside = (pts[:, 0] < 0) | (pts[:, 0] > w - 1) | (pts[:, 1] < 0) | (pts[:, 1] > h - 1)
    if outside.any():
        bad = [used[i] for i in np.flatnonzero(outside)]
        raise ValueError(f"landmark(s) {bad} lie outside the {w}x{h} image: {lm[bad].round(1).tolist()}")
    return lm


# ----------------------------------------------------------------------------------------------- regions
def dilation_iterations(part: str, distance: float) -> int:
    """How far the corner line is dilated: eye 2*floor(d/4), mouth floor(d/3) (d: corner distance in px)."""
    return 2 * int(distance // 4) if part.endswith("eye") else int(distance // 3)


def region_box(landmarks: np.ndarray, part: str, image_shape: tuple[int, ...]) -> Box:
    """Bounding box (x0, y0, x1, y1; end exclusive) of the dilated corner line of ``part``, plus a 5 px margin.

    Closed form of drawing the line with ``skimage.draw.line`` and dilating it ``n`` times with
    ``scipy.ndimage.binary_dilation``: whatever 3x3 structuring element is used (cross or square), the dilated
    line's bounding box is the line's bounding box grown by ``n`` in every direction, clipped to the image.
    The test suite checks this against the explicit construction.
    """
    if part not in CORNERS:
        raise ValueError(f"unknown part {part!r}; choose one of {sorted(CORNERS)}")
    a, b = CORNERS[part]
    lm = check_landmarks(landmarks, image_shape, used=(a, b))
    h, w = image_shape[:2]
    p, q = np.rint(lm[a]).astype(int), np.rint(lm[b]).astype(int)
    n = dilation_iterations(part, float(np.hypot(*(lm[a] - lm[b]))))
    grow = n + MARGIN_PX
    x0, x1 = max(0, min(p[0], q[0]) - grow), min(w, max(p[0], q[0]) + grow + 1)
    y0, y1 = max(0, min(p[1], q[1]) - grow), min(h, max(p[1], q[1]) + grow + 1)
    return int(x0), int(y0), int(x1), int(y1)


def _check_box(box: Box, shape: tuple[int, ...]) -> None:
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= shape[1] and 0 <= y0 < y1 <= shape[0]):
        raise ValueError(f"box {box} is empty or outside an image of shape {shape[:2]}")

