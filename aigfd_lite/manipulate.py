"""The paper's four artificial manipulations (its Fig. 2 and Fig. 3), taught in chapter 3.

A training face is either left untouched ("real") or gets one of four manipulations, placed with its 68 iBUG
landmarks: a horizontal eye flip, a horizontal mouth flip, a vertical mouth flip, or a global piecewise-affine warp.
The local flips follow the published recipe (reference notes): a line between the two corners of the part, dilated
(eye: ``2*floor(d/4)`` iterations, mouth: ``floor(d/3)``, ``d`` the corner distance), its bounding box plus 5 px; the
box is flipped in place and pasted back through a soft mask (box -> Gaussian blur -> erosion with a 15x15 ellipse ->
Gaussian blur -> max 1 -> times a ratio from {0.75, 1, 1, 1}).

Defaults follow the paper as we read it (it does not say how many eyes its eye flip flips; we flip both); options
reproduce the published code: ``eyes="one"`` flips only one eye (points 42-45),
``vertical="rotate180"`` is the code's "vertical" flip (a flip about both axes). :func:`make_training_image` works at
224 px like the code; ``symmetric=True`` sends real faces through the same 128 -> 224 -> 128 round trip as the
manipulated ones (the code resamples only the manipulated ones, a shortcut cue; chapter 3 measures it).

Randomness comes only from the ``rng`` argument (a ``numpy.random.Generator``): same seed, same image.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

MANIPULATIONS = ("eye_flip", "mouth_flip_h", "mouth_flip_v", "warp")
LABELS = ("real",) + MANIPULATIONS

#: Corner landmarks (iBUG 68 order, 0-based), named from the subject's side like aigfd_lite.faces.landmarks: the subject's
#: right eye (36-41) is on the image's left. "eye" is the published code's single eye (42/45).
CORNERS = {"right_eye": (36, 39), "left_eye": (42, 45), "eye": (42, 45), "mouth": (48, 54)}
MARGIN_PX = 5
MASK_RATIOS = (0.75, 1.0, 1.0, 1.0)
ERODE_SIZE = 15
#: The notes give no blur size; we use the sigma OpenCV derives for a 15x15 kernel, cut at radius 7.
BLUR_SIGMA = 2.6
BLUR_RADIUS = 7

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


# ----------------------------------------------------------------------------------------------- soft mask
@functools.lru_cache(maxsize=1)
def _ellipse() -> np.ndarray:
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


# ----------------------------------------------------------------------------------------------- warp
@dataclass(frozen=True)
class WarpPoints:
    """Control points of one piecewise-affine warp, in (x, y) pixels; ``jitter`` is imgaug's (row, col) fractions."""

    src: np.ndarray  # (grid*grid, 2) regular grid from 0 to W (x) and 0 to H (y)
    dst: np.ndarray  # (grid*grid, 2) jittered, clipped to the image
    jitter: np.ndarray  # (grid*grid, 2) as fractions of (H, W)


def piecewise_affine_points(image_shape: tuple[int, ...], rng: np.random.Generator,
                            scale: Union[float, tuple[float, float]] = (0.04, 0.05), grid: int = 4) -> WarpPoints:
    """Draw the jitter like imgaug's PiecewiseAffine: a scale uniform in ``scale``, normal jitter with that std as a
    fraction of the image height/width, on a ``grid`` x ``grid`` lattice spanning 0..H and 0..W, clipped inside."""
    h, w = image_shape[:2]
    lo, hi = (scale, scale) if np.isscalar(scale) else scale
    sigma = float(rng.uniform(lo, hi)) if hi > lo else float(lo)
    jitter = rng.normal(0.0, sigma, size=(grid * grid, 2))
    xx, yy = np.meshgrid(np.linspace(0, w, grid), np.linspace(0, h, grid))
    src = np.stack([xx.ravel(), yy.ravel()], axis=1)
    dst = src + jitter[:, ::-1] * np.array([w, h])
    dst[:, 0] = np.clip(dst[:, 0], 0, w - 1)
    dst[:, 1] = np.clip(dst[:, 1], 0, h - 1)
    return WarpPoints(src, dst, jitter)


@functools.lru_cache(maxsize=16)
def _barycentric_map(h: int, w: int, grid: int):
    """For every output pixel: the 3 control points of its triangle and its barycentric weights, as a sparse
    (H*W, grid*grid) matrix. The triangulation is scipy's Delaunay of the regular grid, the same one
    skimage's PiecewiseAffineTransform builds, so ``matrix @ dst`` is skimage's inverse map exactly."""
    from scipy import sparse
    from scipy.spatial import Delaunay

    xx, yy = np.meshgrid(np.linspace(0, w, grid), np.linspace(0, h, grid))
    tri = Delaunay(np.stack([xx.ravel(), yy.ravel()], axis=1))
    rows, cols = np.mgrid[0:h, 0:w]
    pts = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float64)
    simplex = tri.find_simplex(pts)  # every pixel lies inside: the grid spans 0..W x 0..H
    t = tri.transform[simplex]
    b = np.einsum("nij,nj->ni", t[:, :2], pts - t[:, 2])
    weights = np.concatenate([b, 1 - b.sum(1, keepdims=True)], axis=1)
    index = np.repeat(np.arange(h * w), 3)
    matrix = sparse.csr_matrix((weights.ravel(), (index, tri.simplices[simplex].ravel())), shape=(h * w, grid * grid))
    return matrix.astype(np.float32)


def _warp_fast(image: np.ndarray, pts: WarpPoints, grid: int) -> np.ndarray:
    """skimage's warp, made cheap: the cached barycentric map gives the sampling coordinates, and torch's
    grid_sample does the bilinear sampling with zeros outside (skimage's 'constant' mode, cval 0)."""
    import torch
    import torch.nn.functional as F

    h, w = image.shape[:2]
    # grid_sample wants coordinates in [-1, 1] (align_corners=True: -1 is pixel 0, +1 is pixel W-1). Each row of the
    # map sums to 1, so normalising the 16 control points normalises all H*W sampling coordinates.
    dst = (pts.dst * (2.0 / np.array([w - 1, h - 1])) - 1.0).astype(np.float32)
    norm = _barycentric_map(h, w, grid) @ dst  # (H*W, 2): where each output pixel samples the input, as (x, y)
    # float32 halves the time; it differs from skimage's float64 by at most one grey level (tested)
    sample = torch.from_numpy(norm.reshape(1, h, w, 2))
    tensor = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None]
    out = F.grid_sample(tensor, sample, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def _warp_skimage(image: np.ndarray, pts: WarpPoints) -> np.ndarray:
    from skimage.transform import PiecewiseAffineTransform, warp

    transform = PiecewiseAffineTransform()
    if hasattr(PiecewiseAffineTransform, "from_estimate"):  # skimage >= 0.26
        transform = PiecewiseAffineTransform.from_estimate(pts.src, pts.dst)
    elif not transform.estimate(pts.src, pts.dst):
        raise RuntimeError("PiecewiseAffineTransform could not be estimated")
    out = warp(image, transform, order=1, mode="constant", cval=0, preserve_range=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _warp_imgaug(image: np.ndarray, pts: WarpPoints, grid: int) -> np.ndarray:
    """imgaug 0.4's own PiecewiseAffine, fed our jitter through its (private) per-image sampling result."""
    try:
        import imgaug.augmenters as iaa
        from imgaug.augmenters.geometric import _PiecewiseAffineSamplingResult
    except Exception as err:  # imgaug 0.4 fails to import under numpy >= 2 (np.sctypes was removed)
        raise ImportError(f"the imgaug backend needs imgaug 0.4 with numpy<2; it does not import here: {err}") from err
    aug = iaa.PiecewiseAffine(scale=0.05, nb_rows=grid, nb_cols=grid, order=1, cval=0, mode="constant")
    samples = _PiecewiseAffineSamplingResult(
        nb_rows=np.array([grid]), nb_cols=np.array([grid]), jitter=[pts.jitter.copy()],
        order=np.array([1]), cval=np.array([0]), mode=np.array(["constant"]))
    return aug._augment_images_by_samples([image.copy()], samples)[0]


def piecewise_affine(image: np.ndarray, rng: np.random.Generator, scale=(0.04, 0.05), grid: int = 4,
                     backend: str = "skimage", points: Optional[WarpPoints] = None) -> np.ndarray:
    """The global manipulation: a piecewise-affine warp on a ``grid`` x ``grid`` lattice, linear interpolation,
    constant fill 0, no blending. Backends: "skimage" (reference), "fast" (the same map, cached, sampled in float32:
    at most one grey level from "skimage", tested; ~10x faster), "imgaug" (only where imgaug imports, i.e.
    numpy<2; bit-identical to "skimage" there, tested). ``points`` overrides the jitter drawn from ``rng``."""
    check_image(image)
    pts = points if points is not None else piecewise_affine_points(image.shape, rng, scale, grid)
    if backend == "skimage":
        return _warp_skimage(image, pts)
    if backend == "fast":
        return _warp_fast(image, pts, grid)
    if backend == "imgaug":
        return _warp_imgaug(image, pts, grid)
    raise ValueError(f"unknown warp backend {backend!r}; choose skimage, fast or imgaug")


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
