"""EXIF tags as free labels (chapter 1): the tag set, value cleaning and the file reader :func:`read_exif`.

The chapter's three pieces live in three modules, and every name stays importable from here:

* this module: :class:`ExifTags` and :func:`read_exif`, which reads the camera settings of a photo file: the four
  *ordinal* tags the paper ranks by (aperture f-number, exposure time in seconds, focal length in mm, ISO) and the
  five *categorical* tags BLADES classifies (make, metering mode, exposure mode, white balance, exposure program);
* :mod:`aigfd_lite.exif.flickr`: :func:`parse_flickr_exif` parses the strings Flickr formats EXIF into (the FDF JSON
  files of the full profile), in correct units; :func:`parse_flickr_exif_published` reproduces how the published
  code parses them, quirks included (exposure units, focal/exposure swap), so the book can show the difference;
* :mod:`aigfd_lite.exif.pairs`: :func:`pair_labels` turns one minibatch of tag values into the targets of all i<j pairs
  (Eq. 1); the ranking loss of chapter 2 (:func:`aigfd_lite.losses.pairwise_ranking_loss`) is built on it.

Malformed metadata never raises: an absent, unparsable, zero, negative or implausible value becomes ``None``.
:func:`read_exif` raises only :class:`NotAnImageError` (a ``ValueError``: not an image, empty, a folder, a
decompression bomb, ...) and ``FileNotFoundError``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from PIL import Image

from ..images import UnreadableImage

#: The four ordinal EXIF tags, in the order of every (N, 4) tag array of the package: the one tag tuple (the
#: network's heads, the camera simulator, the corpus and the FDF index name it ``TAGS`` or ``ORDINAL_TAGS``).
ORDINAL_TAGS: tuple[str, ...] = ("aperture", "exposure_time", "focal_length", "iso")
CATEGORICAL_TAGS = ("make", "metering_mode", "exposure_mode", "white_balance", "exposure_program")

#: Values outside these (inclusive) bounds are treated as invalid. They are generous: they only catch sentinels such
#: as 0xFFFFFFFF (4294967295 s) that test files and broken firmware write, never a real camera setting.
PLAUSIBLE_RANGE: dict[str, tuple[float, float]] = {
    "aperture": (0.5, 256.0),  # f/0.5 .. f/256
    "exposure_time": (1e-6, 86_400.0),  # 1 microsecond .. 1 day
    "focal_length": (0.5, 10_000.0),  # mm
    "iso": (1.0, 10_000_000.0),
}

# EXIF tag ids (EXIF 2.32 / CIPA DC-008). The Exif IFD is a sub-directory of IFD0, pointed to by tag 0x8769.
EXIF_IFD_POINTER = 0x8769
_TAG_IDS = {
    "FNumber": 0x829D,
    "ExposureTime": 0x829A,
    "FocalLength": 0x920A,
    "ISO": 0x8827,  # ISOSpeedRatings, renamed PhotographicSensitivity in EXIF 2.3
    "ApertureValue": 0x9202,
    "ShutterSpeedValue": 0x9201,
    "MeteringMode": 0x9207,
    "ExposureMode": 0xA402,
    "WhiteBalance": 0xA403,
    "ExposureProgram": 0x8822,
}
MAKE_TAG = 0x010F  # in IFD0, not in the Exif IFD

#: Names of the categorical codes (the EXIF specification's names), for display and for parsing Flickr's strings.
CATEGORY_NAMES: dict[str, dict[int, str]] = {
    "metering_mode": {0: "Unknown", 1: "Average", 2: "Center-weighted average", 3: "Spot", 4: "Multi-spot",
                      5: "Multi-segment", 6: "Partial", 255: "Other"},
    "exposure_mode": {0: "Auto", 1: "Manual", 2: "Auto bracket"},
    "white_balance": {0: "Auto", 1: "Manual"},
    "exposure_program": {0: "Not defined", 1: "Manual", 2: "Program AE", 3: "Aperture-priority AE",
                         4: "Shutter speed priority AE", 5: "Creative (slow speed)", 6: "Action (high speed)",
                         7: "Portrait", 8: "Landscape"},
}
class NotAnImageError(UnreadableImage):
    """The file exists but is not an image any reader here understands (a ``ValueError``, like every
    :class:`aigfd_lite.images.reader.UnreadableImage`)."""


@dataclass(frozen=True)
class ExifTags:
    """The camera settings of one photo. ``None`` marks a tag that is absent or invalid.

    Ordinal tags are floats in natural units: ``aperture`` is the f-number (5.6 for f/5.6), ``exposure_time`` is in
    seconds, ``focal_length`` in mm (not 35 mm equivalent), ``iso`` the ISO speed. Categorical tags hold the EXIF
    codes (see :data:`CATEGORY_NAMES`) and ``make`` the manufacturer string. Key access works too: ``tags["iso"]``.
    """

    aperture: Optional[float] = None
    exposure_time: Optional[float] = None
    focal_length: Optional[float] = None
    iso: Optional[float] = None
    make: Optional[str] = None
    metering_mode: Optional[int] = None
    exposure_mode: Optional[int] = None
    white_balance: Optional[int] = None
    exposure_program: Optional[int] = None

    def __getitem__(self, key: str) -> Any:
        if key not in ORDINAL_TAGS + CATEGORICAL_TAGS:
            raise KeyError(f"{key!r} is not an EXIF tag here; known: {ORDINAL_TAGS + CATEGORICAL_TAGS}")
        return getattr(self, key)

    def ordinal(self) -> dict[str, Optional[float]]:
        """The four ordinal tags, in :data:`ORDINAL_TAGS` order."""
        return {name: getattr(self, name) for name in ORDINAL_TAGS}

    def categorical(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CATEGORICAL_TAGS}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------------------------------------
# Value cleaning shared by the file reader and the Flickr parser


def _fraction_value(num: str, den: Optional[str]) -> Optional[float]:
    """num/den as a float (exact arithmetic first, so "28/10" is 2.8); None for a zero denominator or junk."""
    try:
        value = float(Fraction(num) / Fraction(den) if den is not None else Fraction(num))
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def _number(value: Any) -> Optional[float]:
    """A finite float from whatever a reader returns (IFDRational, (num, den), int, numeric string), else None."""
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and all(isinstance(v, int) for v in value):  # a rational as a (num, den) pair
            return _fraction_value(str(value[0]), str(value[1]))
        return _number(value[0]) if len(value) >= 1 else None  # a multi-valued tag: the first value counts
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if isinstance(value, str):
        value = value.strip().strip("\x00")
    try:
        out = float(value)  # IFDRational with a zero denominator gives nan
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return out if math.isfinite(out) else None


def _valid(name: str, value: Optional[float]) -> Optional[float]:
    """``value`` if it is a plausible setting for ordinal tag ``name``, else None."""
    if value is None:
        return None
    low, high = PLAUSIBLE_RANGE[name]
    return float(value) if low <= value <= high else None


def _code(value: Any) -> Optional[int]:
    """An EXIF enumeration code (a SHORT: an int in 0..65535), else None."""
    number = _number(value)
    if number is None or not 0 <= number <= 65535 or number != int(number):
        return None
    return int(number)


def _text(value: Any) -> Optional[str]:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", " ").strip()
    return value or None


def _apex_aperture(av: Optional[float]) -> Optional[float]:
    # APEX: Av = 2 log2(N)  =>  N = 2 ** (Av / 2)
    return None if av is None or abs(av) > 64 else 2.0 ** (av / 2.0)


def _apex_exposure(tv: Optional[float]) -> Optional[float]:
    # APEX: Tv = -log2(t)  =>  t = 2 ** (-Tv); Tv is signed (negative for exposures longer than 1 s)
    return None if tv is None or abs(tv) > 64 else 2.0 ** (-tv)


def _tags_from_ifds(exif_ifd: Mapping[int, Any], ifd0: Mapping[int, Any]) -> ExifTags:
    """Tags from the Exif IFD; a tag missing there is looked up in IFD0, where some TIFF writers put them."""

    def get(name: str) -> Any:
        tag = _TAG_IDS[name]
        return exif_ifd[tag] if tag in exif_ifd else ifd0.get(tag)

    aperture = _valid("aperture", _number(get("FNumber")))
    if get("FNumber") is None:  # fall back to APEX only when the direct tag is absent, not when it is invalid
        aperture = _valid("aperture", _apex_aperture(_number(get("ApertureValue"))))
    exposure = _valid("exposure_time", _number(get("ExposureTime")))
    if get("ExposureTime") is None:
        exposure = _valid("exposure_time", _apex_exposure(_number(get("ShutterSpeedValue"))))
    return ExifTags(
        aperture=aperture,
        exposure_time=exposure,
        focal_length=_valid("focal_length", _number(get("FocalLength"))),
        iso=_valid("iso", _number(get("ISO"))),
        make=_text(ifd0.get(MAKE_TAG)),
        metering_mode=_code(get("MeteringMode")),
        exposure_mode=_code(get("ExposureMode")),
        white_balance=_code(get("WhiteBalance")),
        exposure_program=_code(get("ExposureProgram")),
    )


# ----------------------------------------------------------------------------------------------------------------
# Reading files


def _read_with_pillow(image: Any) -> tuple[dict, dict]:
    """(Exif IFD, IFD0) via Pillow. Pillow reads each directory on its own, so a broken thumbnail IFD (IFD1) or a
    broken GPS IFD does not stop it from reading the Exif IFD."""
    exif = image.getexif()
    try:
        ifd0 = dict(exif)
    except Exception:  # noqa: BLE001 - a broken IFD0 entry must not hide the Exif IFD
        ifd0 = {}
    try:
        exif_ifd = dict(exif.get_ifd(EXIF_IFD_POINTER))
    except Exception:  # noqa: BLE001
        exif_ifd = {}
    return exif_ifd, ifd0


def read_exif(path: Union[str, Path]) -> ExifTags:
    """Read the four ordinal and five categorical EXIF tags of an image file (chapter 1).

    FNumber and ExposureTime are used when present; only when a tag is absent does the APEX value stand in
    (ApertureValue: f = 2**(Av/2); ShutterSpeedValue: t = 2**(-Tv)). Malformed metadata gives ``None`` for the
    affected tags and never raises. Only Pillow parses the EXIF: it checks every entry's size against the data.
    piexif (used by the tests as a cross-check) trusts entry counts, and a single corrupted count makes it build
    a format string of gigabytes (over a minute on a 178-byte EXIF block in our fuzz test), so it is no fallback
    for untrusted files. Raises :class:`NotAnImageError` if ``path`` is not an image (an empty file, a folder, a
    decompression-bomb header, anything Pillow cannot identify) and ``FileNotFoundError`` if it does not exist;
    no other exception escapes.
    """
    path = Path(path)
    if path.is_dir():
        raise NotAnImageError(f"{path} is a folder, not an image")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with warnings.catch_warnings():
        # Pillow warns on every corrupt entry it skips; the skipped tag shows up as None instead.
        warnings.simplefilter("ignore")
        try:
            image = Image.open(path)
        except Image.DecompressionBombError as err:
            raise NotAnImageError(f"{path} is not an image this reader accepts (decompression bomb: {err})") from err
        except Exception as err:  # noqa: BLE001 - UnidentifiedImageError, OSError, SyntaxError, struct.error, ...
            raise NotAnImageError(f"{path} is not an image ({type(err).__name__}: {err})") from err
        with image:
            try:
                exif_ifd, ifd0 = _read_with_pillow(image)
            except Exception:  # noqa: BLE001 - an unreadable APP1 segment: no tags, not a crash
                exif_ifd, ifd0 = {}, {}
    try:
        return _tags_from_ifds(exif_ifd, ifd0)
    except Exception:  # noqa: BLE001 - a tag of a type no cleaner expects: no tags, not a crash
        return ExifTags()
