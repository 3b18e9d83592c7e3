"""The camera settings the simulator draws (chapter 3): the four ordinal tags, their target quartiles, the nominal
stops a camera writes into EXIF, and a tag vector read from a sequence or a mapping."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Union

import numpy as np

from ..exif import ORDINAL_TAGS

#: Tag order shared with :data:`aigfd_lite.exif.ORDINAL_TAGS` (aperture = f-number, seconds, mm, ISO).
TAGS: tuple[str, ...] = ORDINAL_TAGS


#: Target quartiles (Q1, median, Q3) of the simulated tags in natural units (f-number, seconds, mm, ISO), chosen for
#: the simulator: neither the paper nor our notes on the published code give the training data's EXIF quartiles.
#: (The name is kept for compatibility.)
PAPER_QUARTILES: dict[str, tuple[float, float, float]] = {
    "aperture": (2.9, 4.5, 5.7),
    "exposure_time": (1 / 500, 1 / 200, 1 / 60),
    "focal_length": (20.0, 50.0, 125.0),
    "iso": (200.0, 400.0, 800.0),
}

#: Physical ranges the samples are clipped to (far outside the quartiles, so the quartiles are unaffected).
TAG_RANGES: dict[str, tuple[float, float]] = {
    "aperture": (1.0, 32.0),
    "exposure_time": (1 / 8000, 30.0),
    "focal_length": (8.0, 1200.0),
    "iso": (50.0, 25600.0),
}

# Nominal third-stop values that cameras write into EXIF (ties between photos are real and the ranking loss sees
# them as 0.5 labels, so snapping to stops keeps that property).
_F_STOPS = (1.0, 1.1, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2, 2.5, 2.8, 3.2, 3.5, 4.0, 4.5, 5.0, 5.6, 6.3, 7.1, 8.0, 9.0,
            10.0, 11.0, 13.0, 14.0, 16.0, 18.0, 20.0, 22.0, 25.0, 29.0, 32.0)
_SHUTTER = tuple(1 / d for d in (8000, 6400, 5000, 4000, 3200, 2500, 2000, 1600, 1250, 1000, 800, 640, 500, 400,
                                 320, 250, 200, 160, 125, 100, 80, 60, 50, 40, 30, 25, 20, 15, 13, 10, 8, 6, 5, 4)) + (
    0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.3, 1.6, 2.0, 2.5, 3.2, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0, 15.0, 20.0, 25.0, 30.0)
_ISO = (50, 64, 80, 100, 125, 160, 200, 250, 320, 400, 500, 640, 800, 1000, 1250, 1600, 2000, 2500, 3200, 4000, 5000,
        6400, 8000, 10000, 12800, 16000, 20000, 25600)
STOPS: dict[str, np.ndarray] = {
    "aperture": np.array(_F_STOPS),
    "exposure_time": np.array(_SHUTTER),
    "iso": np.array(_ISO, dtype=float),
}

_Z75 = 0.6744897501960817  # standard-normal 75th percentile: Q3 of N(0,1)

TagsLike = Union[Sequence[float], np.ndarray, Mapping[str, float]]


# ---------------------------------------------------------------------------------------------------- sampling
def _snap(values: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Nearest stop in log space (stops are geometric)."""
    logs = np.log(stops)
    idx = np.abs(np.log(values)[:, None] - logs[None, :]).argmin(axis=1)
    return stops[idx]


def sample_tags(rng: np.random.Generator, n: int, *, snap: bool = True) -> np.ndarray:
    """Draw ``n`` camera settings, shape ``(n, 4)`` float64 in :data:`TAGS` order (f-number, s, mm, ISO).

    Each tag follows a *two-piece log-normal*: ``log x = log Q2 + z * s``, ``z ~ N(0, 1)``, with ``s = log(Q2/Q1) /
    0.6745`` for ``z < 0`` and ``s = log(Q3/Q2) / 0.6745`` for ``z >= 0``, so its quartiles are exactly those of
    :data:`PAPER_QUARTILES` (the simulator's targets) even where they are not symmetric in log space
    (aperture, exposure time). Tags are drawn independently (real settings co-vary; the ranking task only needs each
    marginal) and clipped to :data:`TAG_RANGES`.

    With ``snap=True`` (default) aperture, exposure time and ISO are rounded, in log space, to the nearest nominal
    third stop a camera writes into EXIF (e.g. F2.8, 1/250 s, ISO 320) and focal length to whole millimetres, so
    ties occur as they do in real EXIF; the snapped quartiles stay within ~4 % of the targets (F2.9 -> F2.8).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    z = rng.standard_normal((n, len(TAGS)))
    out = np.empty((n, len(TAGS)), dtype=np.float64)
    for j, tag in enumerate(TAGS):
        q1, q2, q3 = PAPER_QUARTILES[tag]
        s_lo, s_hi = np.log(q2 / q1) / _Z75, np.log(q3 / q2) / _Z75
        col = np.exp(np.log(q2) + z[:, j] * np.where(z[:, j] < 0, s_lo, s_hi))
        col = np.clip(col, *TAG_RANGES[tag])
        if snap:
            col = _snap(col, STOPS[tag]) if tag in STOPS else np.round(col)
        out[:, j] = col
    return out


def as_tag_array(tags: TagsLike) -> np.ndarray:
    """Tags as a float64 array of 4 in :data:`TAGS` order, from a sequence or a ``{tag: value}`` mapping.

    Raises ``ValueError`` for a missing key, a wrong length, or a value that is not finite and positive.
    """
    if isinstance(tags, Mapping):
        missing = [t for t in TAGS if t not in tags or tags[t] is None]
        if missing:
            raise ValueError(f"tags mapping lacks {missing}; need all of {TAGS}")
        arr = np.array([float(tags[t]) for t in TAGS])
    else:
        arr = np.asarray(tags, dtype=np.float64).reshape(-1)
        if arr.shape != (len(TAGS),):
            raise ValueError(f"need {len(TAGS)} tags in the order {TAGS}, got shape {np.shape(tags)}")
    if not np.all(np.isfinite(arr) & (arr > 0)):
        raise ValueError(f"tags must be finite and > 0 ({dict(zip(TAGS, arr.tolist()))})")
    return arr
