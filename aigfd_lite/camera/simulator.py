"""A camera simulator: ordinal EXIF tags for faces that have none (chapter 3).

The pretext task of chapters 1-2 ranks photos by four camera settings read from EXIF. The paper trains on FDF faces,
whose Flickr photos carry real EXIF; the offline lite corpus has real EXIF for only ~21 faces, too few to learn a
ranking. So the lite profile *renders* each face as if it had been shot with sampled settings:

* ``iso``           -> signal-dependent sensor noise (Poisson-Gaussian, variance ``a*signal + b``, gain ~ ISO);
* ``exposure_time`` -> brightness relative to a reference exposure (sensor clips at 1) and camera-shake motion
                       blur whose length grows with the exposure time (random direction);
* ``aperture``      -> depth-of-field blur of the background (stronger for small f-numbers) and vignetting
                       (stronger for small f-numbers);
* ``focal_length``  -> perspective at a fixed framing (short lenses, used close up, enlarge the middle of the
                       face; long lenses flatten it) and radial lens distortion (barrel below 50 mm, pincushion
                       above);
* then JPEG compression.

The aperture's and the focal length's effects are the lens's (:mod:`aigfd_lite.camera.lens`), the tags are sampled in
:mod:`aigfd_lite.camera.settings` (both re-exported here); this module holds the shake, the sensor and the encoder.
Each effect is its own function
(:func:`perspective`, :func:`radial_distortion`, :func:`defocus_background`, :func:`motion_blur`, :func:`vignette`,
:func:`exposure`, :func:`sensor_noise`, :func:`jpeg`) so chapter 3 can show one at a time;
:func:`simulate` chains them in the order light meets them (lens, shake, sensor, encoder).

Honest caveat (printed by the book as :data:`SIMULATED_NOTE`): a network trained on simulated tags learns to rank
*this simulator's* effects, so the learned ranking can only be as real as the simulator. Real EXIF is used wherever
it exists, and the ``full`` profile uses FDF's real Flickr EXIF (:mod:`aigfd_lite.fdf`).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..images import jpeg_roundtrip
# The lens's effects live in aigfd_lite.camera.lens and the sampled tags in aigfd_lite.camera.settings; they are
# re-exported here so chapter 3 finds every effect, and the tags it renders, in one place.
from .settings import PAPER_QUARTILES, STOPS, TAG_RANGES, TAGS, TagsLike, as_tag_array, sample_tags  # noqa: F401
from .lens import (NEUTRAL_FOCAL_MM, REFERENCE_WIDTH, _defocus, _distort, _image, _perspective,  # noqa: F401
                   _planes, _scale, _vignette_map, default_face_mask, defocus_background, defocus_sigma_px,
                   distortion_k1, perspective, perspective_strength, radial_distortion, vignette,
                   vignette_strength)

#: Changes whenever a rendering changes, so stored lite runs trained on older renderings are not reused
#: (:func:`aigfd_lite.train.runs.data_identity`): 1 = focal length as lens distortion only; 2 = plus perspective.
SIMULATOR_VERSION = 2

SIMULATED_NOTE = (
    "Simulated camera tags: these faces carry no EXIF of their own, so each was rendered by aigfd_lite.camera as if "
    "shot with sampled settings (ISO -> sensor noise, exposure time -> brightness and motion blur, aperture -> "
    "background blur and vignetting, focal length -> perspective and lens distortion, then JPEG). A ranking learned "
    "from them is only as real as this simulator; real EXIF is used wherever it exists, and the full profile uses "
    "FDF's real EXIF."
)

# Reference settings: at these the effects are neutral (no gain change, no distortion).
REFERENCE_EXPOSURE_S = 1 / 200  # the median exposure time of the training data


# ---------------------------------------------------------------------------------------------------- ISO
def noise_params(iso: float, *, a100: float = 1e-4, b100: float = 2e-6) -> tuple[float, float]:
    """Poisson-Gaussian parameters ``(a, b)`` at ``iso``: ``var = a * signal + b`` in linear light in [0, 1].

    ``a`` (shot noise) grows with the analogue gain, proportional to ISO; ``b`` (read noise referred to the output)
    with its square. ``a100``/``b100`` are the values at ISO 100 (a clean sensor: ~0.7 % noise at mid grey).
    """
    g = float(iso) / 100.0
    return a100 * g, b100 * g * g


def _noise(lin: np.ndarray, iso: float, rng: np.random.Generator, a100: float, b100: float) -> np.ndarray:
    """In place on ``lin``. (In-place arithmetic throughout this module: fresh 200 kB temporaries cost page faults.)"""
    a, b = noise_params(iso, a100=a100, b100=b100)
    std = lin * np.float32(a)
    std += np.float32(b)
    np.sqrt(std, out=std)
    std *= rng.standard_normal(lin.shape, dtype=np.float32)
    lin += std
    return np.clip(lin, 0.0, 1.0, out=lin)


def sensor_noise(image: np.ndarray, iso: float, rng: np.random.Generator, *, linear: bool = False,
                 a100: float = 1e-4, b100: float = 2e-6) -> np.ndarray:
    """ISO -> signal-dependent sensor noise (chapter 3).

    Adds ``sqrt(a * x + b) * N(0, 1)`` to every linear-light value ``x`` (Gaussian approximation of Poisson shot
    noise plus Gaussian read noise, ``(a, b) = noise_params(iso)``), then clips to the sensor range [0, 1].
    ``image`` is uint8 (returned as uint8) or float in [0, 1] (returned as float); ``linear=True`` says a float input
    is already linear light, otherwise it is gamma-decoded first and re-encoded after.
    """
    p = _planes(image)
    lin = p if linear else p * p
    out = _noise(lin, iso, rng, a100, b100)
    return _image(out if linear else np.sqrt(out), image)


# ---------------------------------------------------------------------------------------------------- exposure
def exposure_gain(exposure_time: float, *, strength: float = 0.5) -> float:
    """Brightness gain ``(t / t_ref) ** strength`` relative to :data:`REFERENCE_EXPOSURE_S` (1/200 s).

    Collected light is proportional to ``t`` (``strength=1``). Photographers and auto-exposure choose longer
    exposures for darker scenes, which cancels most of that in real photos; the default 0.5 keeps a visible but
    plausible brightness cue (1/60 s: x1.8, 1/500 s: x0.63).
    """
    return float((exposure_time / REFERENCE_EXPOSURE_S) ** strength)


def exposure(image: np.ndarray, exposure_time: float, *, linear: bool = False, strength: float = 0.5) -> np.ndarray:
    """Exposure time -> brightness: linear light times :func:`exposure_gain`, clipped at 1 (the sensor saturates)."""
    p = _planes(image)
    lin = p if linear else p * p
    out = np.minimum(lin * np.float32(exposure_gain(exposure_time, strength=strength)), 1.0)
    return _image(out if linear else np.sqrt(out), image)


def blur_length_px(exposure_time: float, width: int = REFERENCE_WIDTH, *, px_per_second: float = 200.0) -> float:
    """Camera-shake blur length in pixels: ``px_per_second * t`` at 128 px, scaled with the width, capped at width/4.

    200 px/s at 128 px gives 0.4 px at 1/500 s (sharp), 3.3 px at 1/60 s and 25 px at 1/8 s (hand-held limits).
    """
    return float(min(px_per_second * exposure_time * _scale(width), width / 4))


def line_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised line-shaped blur kernel, ``length`` px long at ``angle`` (radians), drawn with bilinear splats.

    Odd size, centred, symmetric about its centre (so convolution and correlation agree).
    """
    half = max(length, 1e-3) / 2
    c = int(np.ceil(half)) + 1
    kernel = np.zeros((2 * c + 1, 2 * c + 1), dtype=np.float64)
    t = np.linspace(-half, half, max(2, int(np.ceil(length * 4))) | 1)
    xs, ys = c + t * np.cos(angle), c + t * np.sin(angle)  # t is symmetric, so the kernel is point-symmetric
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(kernel, (y0 + dy, x0 + dx), w)
    return kernel / kernel.sum()


def _pad_reflect(p: np.ndarray, c: int) -> np.ndarray:
    """``np.pad(p, ((0, 0), (c, c), (c, c)), mode="reflect")`` without np.pad's overhead on small images."""
    h, w = p.shape[1:]
    if c > min(h, w) - 2:  # the slicing below needs c <= size - 2
        return np.pad(p, ((0, 0), (c, c), (c, c)), mode="reflect")
    out = np.empty((p.shape[0], h + 2 * c, w + 2 * c), dtype=p.dtype)
    out[:, c:c + h, c:c + w] = p
    out[:, c:c + h, :c] = p[:, :, c:0:-1]
    out[:, c:c + h, c + w:] = p[:, :, w - 2:w - 2 - c:-1]
    out[:, :c] = out[:, 2 * c:c:-1]
    out[:, c + h:] = out[:, c + h - 2:h - 2:-1]
    return out


def _shake(p: np.ndarray, length: float, angle: float) -> np.ndarray:
    if length < 0.5:
        return p
    k = line_kernel(length, angle)
    c = k.shape[0] // 2
    h, w = p.shape[1:]
    padded = _pad_reflect(p, c)
    out, tap = np.zeros_like(p), np.empty_like(p)
    # A line kernel has few non-zero taps: summing shifted copies beats a dense 2-D convolution.
    for dy, dx in zip(*np.nonzero(k > 1e-6)):
        out += np.multiply(padded[:, dy:dy + h, dx:dx + w], np.float32(k[dy, dx]), out=tap)
    return out


def motion_blur(image: np.ndarray, exposure_time: float, rng: np.random.Generator, *,
                px_per_second: float = 200.0) -> np.ndarray:
    """Exposure time -> camera-shake motion blur along a line of :func:`blur_length_px` in a random direction.

    Longer exposures smear more (chapter 3). Blur under 0.5 px is left out (invisible at this size); the direction
    is drawn from ``rng`` even then, so a seeded run consumes the same random numbers whatever the tags.
    """
    p = _planes(image)
    angle = rng.uniform(0.0, np.pi)
    return _image(_shake(p, blur_length_px(exposure_time, p.shape[2], px_per_second=px_per_second), angle), image)


# ---------------------------------------------------------------------------------------------------- JPEG
def jpeg(image: np.ndarray, quality: int = 90) -> np.ndarray:
    """Encode and decode with PIL's JPEG at ``quality`` (PIL's default 4:2:0 chroma subsampling); returns uint8."""
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"jpeg quality must be in 1..100, got {quality}")
    rgb = image if image.dtype == np.uint8 else _image(_planes(image), np.empty(0, np.uint8))
    _planes(rgb)  # shape check
    return jpeg_roundtrip(rgb, quality)  # the encoder of chapter 5's common path, too


# ---------------------------------------------------------------------------------------------------- all together
def effect_sizes(tags: TagsLike, width: int = REFERENCE_WIDTH) -> dict[str, float]:
    """The size of every effect :func:`simulate` applies for ``tags`` at ``width`` px (a table for chapter 3)."""
    aperture, exposure_time, focal_length, iso = as_tag_array(tags)
    a, b = noise_params(iso)
    return {
        "noise_std_mid_grey": float(np.sqrt(a * 0.5 ** 2 + b)),  # linear-light std at display mid grey
        "brightness_gain": exposure_gain(exposure_time),
        "motion_blur_px": blur_length_px(exposure_time, width),
        "background_blur_sigma_px": defocus_sigma_px(aperture, width),
        "vignetting_corner_loss": vignette_strength(aperture),
        "distortion_k1": distortion_k1(focal_length),
        "perspective_centre_magnification": 1.0 / (1.0 - perspective_strength(focal_length)),
    }


def simulate(image: np.ndarray, tags: TagsLike, rng: np.random.Generator, *,
             face_mask: Optional[np.ndarray] = None, jpeg_quality: Optional[int] = 90) -> np.ndarray:
    """Render a uint8 (H, W, 3) face as if shot with ``tags`` (chapter 3); returns uint8 (H, W, 3).

    ``tags``: 4 values in :data:`TAGS` order (f-number, seconds, mm, ISO) or a mapping with those keys. The effects
    run in the order light meets them: the lens (:func:`perspective` and :func:`radial_distortion` from the focal
    length, :func:`defocus_background` from the aperture, with ``face_mask`` as in that function), camera shake
    during the exposure (:func:`motion_blur`), the sensor in linear light (:func:`vignette`, :func:`exposure` with
    clipping, :func:`sensor_noise` from the ISO), then :func:`jpeg` at ``jpeg_quality`` (``None`` skips it).
    Deterministic given the state of ``rng`` (it draws the blur direction, then the noise).
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"simulate expects a uint8 (H, W, 3) image, got {getattr(image, 'dtype', type(image))}")
    aperture, exposure_time, focal_length, iso = as_tag_array(tags)
    p = _planes(image)
    h, w = p.shape[1:]
    p = _distort(_perspective(p, perspective_strength(focal_length)), distortion_k1(focal_length))
    p = _defocus(p, defocus_sigma_px(aperture, w), face_mask)
    p = _shake(p, blur_length_px(exposure_time, w), rng.uniform(0.0, np.pi))
    lin = np.multiply(p, p, out=p)
    lin *= _vignette_map(h, w, aperture, 1.0) * np.float32(exposure_gain(exposure_time))
    np.minimum(lin, 1.0, out=lin)  # the pixel saturates before read-out
    lin = _noise(lin, iso, rng, 1e-4, 2e-6)
    out = _image(np.sqrt(lin, out=lin), image)
    return out if jpeg_quality is None else jpeg(out, jpeg_quality)
