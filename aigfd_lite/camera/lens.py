"""The lens of the camera simulator: what the aperture and the focal length do to a face crop (chapter 3).

* ``aperture``     -> depth-of-field blur of the background (:func:`defocus_background`) and vignetting
                      (:func:`vignette`), both stronger for small f-numbers;
* ``focal_length`` -> perspective at a fixed framing (:func:`perspective`: short lenses, used close up, enlarge the
                      middle of the face; long lenses flatten it) and radial lens distortion
                      (:func:`radial_distortion`: barrel below 50 mm, pincushion above).

:mod:`aigfd_lite.camera` samples the tags and chains these with the sensor's effects and JPEG; this module also
holds the float "planes" helpers both use.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Optional

import numpy as np
from scipy import ndimage


NEUTRAL_FOCAL_MM = 50.0  # a "normal" lens: no distortion, and the perspective the faces were shot with
REFERENCE_WIDTH = 128  # effect sizes in pixels are given for a 128 px face and scale with the width


# ---------------------------------------------------------------------------------------------------- helpers
# Internally an image is float32 "planes" (3, H, W) in [0, 1]: contiguous channels make the filters about twice as
# fast as (H, W, 3). Public functions take and return (H, W, 3) uint8 (or float in [0, 1]) so chapter 3 can show them.
# Display values are gamma-encoded while light adds up linearly; a gamma of 2 is close enough to sRGB's ~2.2 for a
# simulator and costs a multiply and a square root instead of two powers.
def _planes(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB array, got {getattr(image, 'shape', type(image))}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"image too small: {image.shape}")
    if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected uint8, or float in [0, 1], got dtype {image.dtype}")
    # Always a fresh array: the effects below work in place on it.
    planes = np.empty((3, *image.shape[:2]), dtype=np.float32)
    planes[...] = image.transpose(2, 0, 1)
    if image.dtype == np.uint8:
        planes *= np.float32(1 / 255)
    return planes


def _image(planes: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Planes back to (H, W, 3) in the dtype of ``like`` (uint8 in -> uint8 out, rounded and clipped)."""
    if like.dtype != np.uint8:
        return np.ascontiguousarray(planes.transpose(1, 2, 0), dtype=like.dtype)
    np.clip(planes, 0.0, 1.0, out=planes)  # in place: planes are always our own temporaries
    planes *= 255.0
    planes += 0.5
    out = np.empty((*planes.shape[1:], 3), dtype=np.uint8)
    out[...] = planes.transpose(1, 2, 0)  # truncation after +0.5 rounds
    return out


def _scale(width: int) -> float:
    return width / REFERENCE_WIDTH


@lru_cache(maxsize=16)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centred pixel-centre coordinates ``y``, ``x`` in [-0.5, 0.5] and ``r2`` (squared radius, 1 at the corners)."""
    y = (np.arange(height, dtype=np.float32) + 0.5) / height - 0.5
    x = (np.arange(width, dtype=np.float32) + 0.5) / width - 0.5
    yy, xx = np.meshgrid(y, x, indexing="ij")
    r2 = (xx ** 2 + yy ** 2) / np.float32(0.5)
    for a in (yy, xx, r2):
        a.flags.writeable = False
    return yy, xx, r2


# ---------------------------------------------------------------------------------------------------- aperture
@lru_cache(maxsize=16)
def _default_mask(height: int, width: int) -> np.ndarray:
    yy, xx, _ = _grid(height, width)
    r = np.sqrt((xx / 0.36) ** 2 + (yy / 0.44) ** 2)  # 1 on the ellipse
    mask = np.clip((1.15 - r) / 0.3, 0.0, 1.0).astype(np.float32)
    mask.flags.writeable = False
    return mask


def default_face_mask(height: int, width: int) -> np.ndarray:
    """A soft centred ellipse (float32 (H, W) in [0, 1], 1 = face) for a 1.3x-enlarged face crop.

    The face box is 1/1.3 of the crop; the ellipse has semi-axes 0.36 W by 0.44 H and a feathered edge.
    """
    return _default_mask(height, width).copy()


def defocus_sigma_px(aperture: float, width: int = REFERENCE_WIDTH, *, px_at_f1: float = 8.0) -> float:
    """Background blur (Gaussian sigma, px) for f-number ``aperture``: ``px_at_f1 / N`` at 128 px.

    An out-of-focus point spreads over a circle proportional to the aperture diameter ``f / N``; with the focus on
    the face and the background at a fixed distance behind it, that is ``~ 1 / N`` (F2: 4 px, F5.6: 1.4 px, F16: 0.5).
    A Gaussian stands in for the disc (cheaper, and close once JPEG has smoothed the edges).
    """
    return float(px_at_f1 / aperture * _scale(width))


def _defocus(p: np.ndarray, sigma: float, face_mask: Optional[np.ndarray]) -> np.ndarray:
    h, w = p.shape[1:]
    m = _default_mask(h, w) if face_mask is None else np.clip(np.asarray(face_mask, dtype=np.float32), 0, 1)
    if m.shape != (h, w):
        raise ValueError(f"face_mask has shape {m.shape}, the image is {(h, w)}")
    if sigma < 0.3:
        return p
    blurred = ndimage.gaussian_filter(p, sigma=(0, sigma, sigma), mode="reflect", truncate=3.0)
    p -= blurred  # in place: p = blurred + m * (p - blurred)
    p *= m
    p += blurred
    return p


def defocus_background(image: np.ndarray, aperture: float, face_mask: Optional[np.ndarray] = None, *,
                       px_at_f1: float = 8.0) -> np.ndarray:
    """Aperture -> depth of field: blur what lies outside the face, more for small f-numbers (chapter 3).

    ``face_mask`` (H, W) in [0, 1] marks the in-focus face (1 = sharp; default :func:`default_face_mask`):
    ``out = m * image + (1 - m) * gaussian(image, defocus_sigma_px(aperture))``.
    """
    p = _planes(image)
    return _image(_defocus(p, defocus_sigma_px(aperture, p.shape[2], px_at_f1=px_at_f1), face_mask), image)


def vignette_strength(aperture: float, *, at_f1: float = 1.0, max_strength: float = 0.6) -> float:
    """Corner light loss ``v = min(max_strength, at_f1 / N^2)`` (F1.4: 0.51, F2.8: 0.13, F8: 0.016).

    Optical vignetting comes from the lens barrel clipping oblique beams; it matters with the aperture wide open and
    fades as the aperture area (``~ 1 / N^2``) shrinks.
    """
    return float(min(max_strength, at_f1 / aperture ** 2))


def _vignette_map(h: int, w: int, aperture: float, at_f1: float) -> np.ndarray:
    return 1.0 - np.float32(vignette_strength(aperture, at_f1=at_f1)) * _grid(h, w)[2]


def vignette(image: np.ndarray, aperture: float, *, linear: bool = False, at_f1: float = 1.0) -> np.ndarray:
    """Aperture -> vignetting: linear light times ``1 - v r^2`` (``r`` = 1 at the corners, ``v`` from
    :func:`vignette_strength`, so stronger for small f-numbers; chapter 3)."""
    p = _planes(image)
    lin = p if linear else p * p
    out = lin * _vignette_map(*p.shape[1:], aperture, at_f1)
    return _image(out if linear else np.sqrt(out), image)


# ---------------------------------------------------------------------------------------------------- focal length
def distortion_k1(focal_length: float, *, max_k1: float = 0.08) -> float:
    """Radial-distortion coefficient for ``focal_length`` (mm): ``max_k1 * tanh(log(f / 50) / log 4)``.

    Negative (barrel) for wide angles, 0 at the 50 mm normal lens, positive (pincushion) for telephoto:
    20 mm -> -0.048, 125 mm -> +0.048, saturating at +-0.08 (a few percent, like uncorrected zooms).
    """
    return float(max_k1 * np.tanh(np.log(focal_length / NEUTRAL_FOCAL_MM) / np.log(4.0)))


def _distort(p: np.ndarray, k1: float) -> np.ndarray:
    if abs(k1) < 1e-6:
        return p
    h, w = p.shape[1:]
    yy, xx, r2 = _grid(h, w)
    factor = (1.0 - np.float32(k1) * r2) * np.float32(1.0 / (1.0 - k1))  # r_u / r_d; the corners stay corners
    sy = np.clip((yy * factor + 0.5) * h - 0.5, 0, h - 1).ravel()
    sx = np.clip((xx * factor + 0.5) * w - 0.5, 0, w - 1).ravel()
    y0 = np.minimum(np.floor(sy), h - 2)  # float32 throughout: an int array would promote the weights to float64
    x0 = np.minimum(np.floor(sx), w - 2)
    fy, fx = sy - y0, sx - x0
    flat = p.reshape(3, -1)
    i00 = (y0 * w + x0).astype(np.intp)
    top, bottom, right = (np.empty_like(flat) for _ in range(3))
    for out, i in ((top, i00), (bottom, i00 + w)):  # out = left + (right - left) * fx, in place
        np.take(flat, i, axis=1, out=out)
        np.take(flat, i + 1, axis=1, out=right)
        right -= out
        right *= fx
        out += right
    bottom -= top
    bottom *= fy
    top += bottom
    return top.reshape(3, h, w)


def perspective_strength(focal_length: float, *, depth_ratio: float = 0.1, min_focal_mm: float = 12.5) -> float:
    """How much nearer the face's centre is than its outline, relative to a 50 mm lens: ``s = depth_ratio (50 / f
    - 1)``, with ``f`` clipped below at ``min_focal_mm``.

    A photographer keeps the face the same size in the frame, so the camera stands at a distance ``d`` proportional
    to the focal length ``f``. The nose is ``Z`` nearer than the face's outline, so it is magnified ``d / (d - Z)``
    relative to the outline: short lenses (close up) enlarge the middle of the face, long lenses (far away) flatten
    it. ``depth_ratio = Z / d`` at 50 mm (a face 10 cm deep seen from 1 m); the faces are taken as shot at 50 mm, so
    ``s`` is 0 there: 20 mm -> 0.15 (centre magnified 1.18x), 125 mm -> -0.06 (0.94x), at most 0.3 (12.5 mm, the
    camera 25 cm away).
    """
    f = max(float(focal_length), min_focal_mm)
    return float(depth_ratio * (NEUTRAL_FOCAL_MM / f - 1.0))


def _perspective(p: np.ndarray, s: float) -> np.ndarray:
    if abs(s) < 1e-6:
        return p
    h, w = p.shape[1:]
    yy, xx, _ = _grid(h, w)
    # Output point q at elliptic radius rho_q comes from the source point at rho_p, where q = rho_p m(rho_p),
    # m(rho) = 1 / (1 - s (1 - rho^2)) inside the face ellipse (depth ~ 1 - rho^2, a dome), 1 outside. Solving the
    # quadratic s rho_q rho_p^2 - rho_p + rho_q (1 - s) = 0 gives rho_p / rho_q below (1 on the ellipse: continuous).
    rho2 = np.minimum((xx / np.float32(0.36)) ** 2 + (yy / np.float32(0.44)) ** 2, 1.0)
    ratio = 2.0 * (1.0 - s) / (1.0 + np.sqrt(1.0 - 4.0 * s * (1.0 - s) * rho2))
    coords = np.stack([(yy * ratio + 0.5) * h - 0.5, (xx * ratio + 0.5) * w - 0.5])
    return np.stack([ndimage.map_coordinates(plane, coords, order=1, mode="nearest") for plane in p])


def perspective(image: np.ndarray, focal_length: float, *, depth_ratio: float = 0.1) -> np.ndarray:
    """Focal length -> perspective at a fixed framing: the middle of the face magnified by ``1 / (1 - s (1 -
    rho^2))`` (``rho`` = 1 on the face ellipse of :func:`default_face_mask`, ``s`` from
    :func:`perspective_strength`; chapter 3). Wide angles bulge the nose and eyes, telephotos flatten them; the
    face's outline and everything outside it stay in place. This is the effect of focal length that a face crop
    shows across the whole face, where lens distortion (:func:`radial_distortion`) moves only the border by a pixel
    or two. Exact inverse mapping, bilinear sampling (``scipy.ndimage.map_coordinates``).
    """
    p = _planes(image)
    return _image(_perspective(p, perspective_strength(focal_length, depth_ratio=depth_ratio)), image)


def radial_distortion(image: np.ndarray, focal_length: float, *, max_k1: float = 0.08) -> np.ndarray:
    """Focal length -> radial lens distortion ``r_d = r_u (1 + k1 r_u^2)``, ``k1 = distortion_k1(f)`` (chapter 3).

    ``r`` is the distance from the centre, 1 at the corners. Barrel (``k1 < 0``, short lenses) bows straight lines
    outwards, pincushion (``k1 > 0``, long lenses) inwards. The result is rescaled so the corners stay corners (as a
    camera's crop would), so every sample lies inside the frame: no black borders for a network to pick up as a
    shortcut. Bilinear sampling through the first-order inverse ``r_u ~ r_d (1 - k1 r_d^2)``.
    """
    p = _planes(image)
    return _image(_distort(p, distortion_k1(focal_length, max_k1=max_k1)), image)
