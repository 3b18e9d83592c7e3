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

The package: :mod:`.regions` (checks, corner landmarks, the dilated line's box), :mod:`.mask` (the soft mask and the
flips), :mod:`.warp` (the piecewise-affine warp), :mod:`.kinds` (the four kinds and a training item); imports point
in that order, from ``kinds`` down.
"""
from .kinds import (LABELS, MANIPULATIONS, make_training_image, manipulate, resize_bilinear, sample_kind,
                    scale_landmarks)
from .mask import BLUR_RADIUS, BLUR_SIGMA, ERODE_SIZE, MASK_RATIOS, blend_flip, draw_ratio, flip_region, soft_mask
from .regions import CORNERS, MARGIN_PX, Box, check_image, check_landmarks, dilation_iterations, region_box
from .warp import WarpPoints, piecewise_affine, piecewise_affine_points

__all__ = ["BLUR_RADIUS", "BLUR_SIGMA", "Box", "CORNERS", "ERODE_SIZE", "LABELS", "MANIPULATIONS", "MARGIN_PX",
           "MASK_RATIOS", "WarpPoints", "blend_flip", "check_image", "check_landmarks", "dilation_iterations",
           "draw_ratio", "flip_region", "make_training_image", "manipulate", "piecewise_affine",
           "piecewise_affine_points", "region_box", "resize_bilinear", "sample_kind", "scale_landmarks",
           "soft_mask"]
