"""Cutting a face out of a photo like FDF does (chapter 3): a square about the detector's box, resized.

:func:`crop_face` is shared by the corpus (:mod:`aigfd_lite.faces`) and by ``aigfd score`` (:mod:`aigfd_lite.score`),
so a face is cropped the same way when the detector is trained and when it is used.
"""
from __future__ import annotations

import numpy as np
from PIL import Image


def square_crop_box(box: tuple[int, int, int, int], scale: float) -> tuple[int, int, int]:
    """``(left, top, side)`` of the square of side ``scale`` x the box's longer side, centred on the box."""
    x0, y0, x1, y1 = box
    side = max(1, int(round(scale * max(x1 - x0, y1 - y0))))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side


def crop_face(
    image: np.ndarray, box: tuple[int, int, int, int], landmarks: np.ndarray, scale: float, size: int
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int], int]:
    """Crop the enlarged square around ``box``, resize it to ``size`` px and map ``landmarks`` into it.

    Returns ``(crop, crop_landmarks, (left, top, side), pad_px)``. Parts of the square outside the photo are filled
    by repeating the edge pixels (``pad_px`` = the widest such band). Landmarks map pixel centres to pixel centres:
    x' = (x - left + 0.5) * size / side - 0.5.
    """
    h, w = image.shape[:2]
    left, top, side = square_crop_box(box, scale)
    pads = (max(0, -top), max(0, top + side - h), max(0, -left), max(0, left + side - w))
    padded = np.pad(image, ((pads[0], pads[1]), (pads[2], pads[3]), (0, 0)), mode="edge") if any(pads) else image
    patch = padded[top + pads[0]: top + pads[0] + side, left + pads[2]: left + pads[2] + side]
    crop = np.asarray(Image.fromarray(patch).resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)
    factor = size / side
    mapped = (np.asarray(landmarks, dtype=np.float64) - [left, top] + 0.5) * factor - 0.5
    return crop, mapped.astype(np.float32), (left, top, side), int(max(pads))
