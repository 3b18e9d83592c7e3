"""The package's warp backends against imgaug's own PiecewiseAffine, run in the imgaug side environment.

imgaug 0.4 does not import beside numpy 2, so `make imgaug-reference` (run by `make test`) builds .venv-imgaug
(numpy < 2 + imgaug) and writes imgaug's warps for fixed seeds to _build/imgaug/reference.npz
(tools/imgaug_reference.py): the input images, the jitter imgaug drew and imgaug's output. Here the same jitter goes
through aigfd_lite.manipulate.piecewise_affine_points and both backends.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from aigfd_lite import manipulate as M
from conftest import ROOT

REFERENCE = ROOT / "_build" / "imgaug" / "reference.npz"


class _ImgaugDraw:
    """A stand-in generator that hands piecewise_affine_points the jitter imgaug drew (its sigma is only used to
    draw that jitter, so any value in range will do)."""

    def __init__(self, jitter: np.ndarray) -> None:
        self.jitter = jitter

    def uniform(self, low: float, high: float) -> float:
        return (low + high) / 2

    def normal(self, loc: float, scale: float, size) -> np.ndarray:
        assert tuple(size) == self.jitter.shape
        return self.jitter.copy()


@pytest.fixture(scope="module")
def reference():
    if not REFERENCE.is_file():
        message = f"{REFERENCE} is missing: run `make imgaug-reference` (builds the numpy<2 + imgaug side env)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI builds it in `make test`: a missing file there is a failure, not a skip
        pytest.skip(message)
    with np.load(REFERENCE, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    seeds = sorted(int(k.split("_")[1]) for k in arrays if k.startswith("imgaug_"))
    assert len(seeds) >= 4, "the reference file holds too few warps"
    return arrays, seeds


@pytest.mark.parametrize("backend, tolerance", [("skimage", 0), ("fast", 1)])
def test_warp_backends_match_imgaug(reference, backend, tolerance):
    arrays, seeds = reference
    for seed in seeds:
        image, jitter, theirs = arrays[f"image_{seed}"], arrays[f"jitter_{seed}"], arrays[f"imgaug_{seed}"]
        pts = M.piecewise_affine_points(image.shape, _ImgaugDraw(jitter), grid=4)
        ours = M.piecewise_affine(image, None, points=pts, backend=backend)
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype == np.uint8
        diff = np.abs(ours.astype(int) - theirs)
        assert diff.max() <= min(tolerance, 1), (seed, backend, int(diff.max()), str(arrays["versions"]))
        assert (np.abs(theirs.astype(int) - image) > 2).any(axis=2).mean() > 0.3  # imgaug really warped it
