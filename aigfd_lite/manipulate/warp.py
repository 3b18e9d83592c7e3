"""The global manipulation (chapter 3): a piecewise-affine warp like imgaug's PiecewiseAffine, with three
backends (skimage, its map cached and sampled by torch, imgaug itself)."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
from scipy import sparse
from scipy.spatial import Delaunay

from .regions import check_image


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
    # imported here, not at the top: `import aigfd_lite.manipulate` stays free of torch
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
    # imported here, not at the top: `import aigfd_lite.blades` stays free of skimage
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
        # imported here, not at the top: `import aigfd_lite.blades` stays free of imgaug (optional, numpy<2 only)
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

