"""Simulated categorical camera settings for faces without EXIF (chapter 7, lite profile).

BLADES classifies five categorical EXIF tags. The lite corpus has real EXIF for about 20 faces (one camera
model), so, as :mod:`aigfd_lite.camera` does for the ordinal tags, the other faces are *rendered* as if a camera
with sampled categorical settings had taken them. Every effect is one a real camera has, applied after the ordinal
rendering (the ordinal simulator is left untouched):

* ``make`` (10 classes): each maker's image pipeline renders colour differently (its own colour matrix, tone curve
  and default JPEG quality). Here each make has a fixed, seeded per-channel gain (at most +-6 %), a tone gamma in
  [0.9, 1.1] and a JPEG quality in [80, 95]; "other" is neutral.
* ``white_balance``: auto (0) neutralises the colour cast (a partial grey-world correction, as auto white balance
  does); manual (1) keeps a preset that does not match the light: a warm or cool cast of 8-15 % between red and
  blue.
* ``metering_mode``: the meter sets the exposure from a region: average (whole frame), centre-weighted (Gaussian
  weights), spot (central 10 %), partial (central 30 %), multi-segment (median of a 4x4 grid), multi-spot (mean of
  five spots); the image is scaled so that region reaches mid grey (gain clipped to 0.6-1.6). Unknown and other
  are treated as average.
* ``exposure_mode``: auto (0) keeps the meter's exposure; manual (1) adds a photographer's error of +-0.3-1 stop;
  auto bracket (2) is one frame of a -1 / 0 / +1 stop bracket.
* ``exposure_program``: picks the ordinal settings as the program would (:func:`program_tags`): aperture priority
  opens the lens (f/1.4-f/2.8, the usual reason to choose it), shutter priority freezes motion (1/500-1/2000 s),
  scene modes (portrait) open the lens and add the maker's "portrait" look (+15 % saturation); program AE, manual
  and not defined keep the drawn settings.

The class frequencies are uniform (a choice: real frequencies are very skewed, BLADES' reason for the focal
loss). Everything here is simulated and the book labels it so (:data:`SIMULATED_CATEGORICAL_NOTE`).
"""
from __future__ import annotations

import numpy as np

from .tasks import CATEGORICAL_TASKS, task
from ..camera import jpeg

SIMULATED_CATEGORICAL_NOTE = (
    "Simulated categorical tags: faces without EXIF were rendered by aigfd_lite.blades.categorical_camera as if shot "
    "with sampled make (colour rendering, tone, JPEG quality), white balance (colour cast), metering mode "
    "(which region sets the exposure), exposure mode (exposure error / bracket) and exposure program (which "
    "ordinal settings are chosen, portrait look). A classifier learned from them learns this simulator.")

_N_CLASSES = {name: task(name).n_targets for name in CATEGORICAL_TASKS}


def sample_categorical(rng: np.random.Generator) -> np.ndarray:
    """(5,) class indices (:data:`aigfd_lite.blades.tasks.CATEGORICAL_TASKS` order), uniform per task."""
    return np.array([rng.integers(_N_CLASSES[name]) for name in CATEGORICAL_TASKS], dtype=np.int64)


def program_tags(tags: np.ndarray, program_class: int, rng: np.random.Generator) -> np.ndarray:
    """The ordinal tags (f-number, s, mm, ISO) as the exposure program chooses them (see the module docstring)."""
    tags = np.array(tags, dtype=np.float64)
    name = task("exposure_program").classes[program_class]
    if name in ("aperture priority", "scene mode"):
        tags[0] = float(rng.choice([1.4, 1.8, 2.0, 2.8]))
    elif name == "shutter priority":
        tags[1] = float(rng.choice([1 / 500, 1 / 1000, 1 / 2000]))
    return tags


def _make_pipeline(make_class: int) -> tuple[np.ndarray, float, int]:
    if make_class == _N_CLASSES["make"] - 1:  # "other": neutral
        return np.ones(3), 1.0, 90
    rng = np.random.default_rng([2025, make_class])
    return 1 + rng.uniform(-0.06, 0.06, 3), float(rng.uniform(0.9, 1.1)), int(rng.integers(80, 96))


def _metering_gain(x: np.ndarray, metering_class: int) -> float:
    """Gain that brings the metered region of x (H, W, 3 in [0, 1]) to mid grey (0.46 in display values)."""
    h, w = x.shape[:2]
    luma = x.mean(axis=2)
    name = task("metering_mode").classes[metering_class]
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((yy - h / 2) / h, (xx - w / 2) / w)
    if name == "center-weighted average":
        weights = np.exp(-(r / 0.25) ** 2)
        level = float((luma * weights).sum() / weights.sum())
    elif name in ("spot", "partial"):
        level = float(luma[r <= (0.18 if name == "spot" else 0.31)].mean())
    elif name == "multi-segment":
        level = float(np.median([b.mean() for row in np.array_split(luma, 4, 0) for b in np.array_split(row, 4, 1)]))
    elif name == "multi-spot":
        spots = [(0.5, 0.5), (0.3, 0.3), (0.3, 0.7), (0.7, 0.3), (0.7, 0.7)]
        level = float(np.mean([luma[int(a * h), int(b * w)] for a, b in spots]))
    else:  # average, unknown, other
        level = float(luma.mean())
    return float(np.clip(0.46 / max(level, 1e-3), 0.6, 1.6))


def render_categorical(image: np.ndarray, classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render uint8 (H, W, 3) ``image`` with categorical settings ``classes`` (5,); returns uint8 (H, W, 3).

    Order: metering and exposure mode set the exposure, white balance the colour cast, then the make's colour,
    tone and JPEG (and the scene mode's saturation, part of the maker's picture style). Deterministic given rng.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"render_categorical expects uint8 (H, W, 3), got {image.dtype} {image.shape}")
    make, metering, mode, balance, program = (int(c) for c in classes)
    x = image.astype(np.float64) / 255.0
    stops = 0.0
    if mode == 1:
        stops = float(rng.choice([-1, 1]) * rng.uniform(0.3, 1.0))
    elif mode == 2:
        stops = float(rng.choice([-1.0, 0.0, 1.0]))
    x = x * _metering_gain(x, metering) * 2.0 ** (stops / 2.2)  # display values: a stop is 2 ** (1 / 2.2)
    mean = x.reshape(-1, 3).mean(axis=0)
    if balance == 0:  # auto: move half-way to a grey world
        x = x * (0.5 + 0.5 * mean.mean() / np.maximum(mean, 1e-3))
    else:  # manual preset that does not match the light: warm or cool cast
        cast = float(rng.choice([-1, 1]) * rng.uniform(0.08, 0.15))
        x = x * np.array([1 + cast, 1.0, 1 - cast])
    gains, gamma, quality = _make_pipeline(make)
    x = np.clip(x * gains, 0.0, 1.0) ** gamma
    if task("exposure_program").classes[program] == "scene mode":
        grey = x.mean(axis=2, keepdims=True)
        x = np.clip(grey + 1.15 * (x - grey), 0.0, 1.0)
    out = (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return jpeg(out, quality)
