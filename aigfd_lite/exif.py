"""EXIF tags as free labels, and the pairwise ranking labels of the paper's Eq. 1 (taught in chapter 1).

Three pieces:

* :func:`read_exif` reads the camera settings of a photo file: the four *ordinal* tags the paper ranks by
  (aperture f-number, exposure time in seconds, focal length in mm, ISO) and the five *categorical* tags BLADES
  classifies (make, metering mode, exposure mode, white balance, exposure program).
* :func:`parse_flickr_exif` parses the strings Flickr formats EXIF into (the FDF JSON files of the full profile), in
  correct units; :func:`parse_flickr_exif_published` reproduces how the published code parses them, quirks included
  (exposure units, focal/exposure swap), so the book can show the difference.
* :func:`pair_labels` turns one minibatch of tag values into the targets of all i<j pairs (Eq. 1); the ranking loss
  of chapter 2 (:func:`aigfd_lite.losses.pairwise_ranking_loss`) is built on it.

Malformed metadata never raises: an absent, unparsable, zero, negative or implausible value becomes ``None``.
A file that is not an image raises :class:`NotAnImageError` (a ``ValueError``).
"""
from __future__ import annotations

import math
import numbers
import re
import warnings
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch

ORDINAL_TAGS = ("aperture", "exposure_time", "focal_length", "iso")
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
# Other spellings of the same codes: EXIF 2.2's own names ("Pattern", "Normal program", ...) and exiftool's.
_CATEGORY_ALIASES: dict[str, dict[str, int]] = {
    "metering_mode": {"pattern": 5, "multi segment": 5, "multi spot": 4, "center weighted average": 2,
                      "centre-weighted average": 2, "matrix": 5, "evaluative": 5},
    "exposure_mode": {"auto exposure": 0, "manual exposure": 1, "auto bracketing": 2},
    "white_balance": {"auto white balance": 0, "manual white balance": 1},
    "exposure_program": {"not defined": 0, "normal program": 2, "program": 2, "aperture priority": 3,
                         "shutter priority": 4, "shutter speed priority": 4, "creative program": 5,
                         "action program": 6, "portrait mode": 7, "landscape mode": 8},
}


class NotAnImageError(ValueError):
    """The file exists but is not an image any reader here understands."""


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
    for untrusted files. Raises :class:`NotAnImageError` if ``path`` is not an image (e.g. an empty
    file) and ``FileNotFoundError`` if it does not exist.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with warnings.catch_warnings():
        # Pillow warns on every corrupt entry it skips; the skipped tag shows up as None instead.
        warnings.simplefilter("ignore")
        try:
            image = Image.open(path)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise NotAnImageError(f"{path} is not an image ({type(err).__name__}: {err})") from err
        with image:
            try:
                exif_ifd, ifd0 = _read_with_pillow(image)
            except Exception:  # noqa: BLE001 - an unreadable APP1 segment: no tags, not a crash
                exif_ifd, ifd0 = {}, {}
    return _tags_from_ifds(exif_ifd, ifd0)


# ----------------------------------------------------------------------------------------------------------------
# Parsing Flickr's formatted EXIF strings (FDF's JSON files)

#: Keys of each tag in Flickr's formatted EXIF (first match wins).
FLICKR_KEYS: dict[str, tuple[str, ...]] = {
    "aperture": ("Aperture Value", "Aperture", "F-Number", "FNumber", "F Number"),
    "exposure_time": ("Exposure Time", "Exposure", "Shutter Speed"),
    "focal_length": ("Focal Length",),
    "iso": ("ISO Speed Ratings", "ISO Speed", "ISO"),
    "make": ("Make",),
    "metering_mode": ("Metering Mode",),
    "exposure_mode": ("Exposure Mode",),
    "white_balance": ("White Balance",),
    "exposure_program": ("Exposure Program",),
}

_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)"
_VALUE = rf"(?P<num>{_NUM})(?:\s*/\s*(?P<den>{_NUM}))?"  # "5.6", "28/10", "1/250"; no sign: negatives are invalid
_TRAILER = r"\s*(?:\(.*\))?\s*"  # e.g. "50.0 mm (35 mm equivalent: 75 mm)"
_PATTERNS = {
    "aperture": re.compile(rf"^\s*(?:f\s*/?\s*)?{_VALUE}{_TRAILER}$", re.IGNORECASE),
    "exposure_time": re.compile(rf"^\s*{_VALUE}\s*(?:s|sec|secs|second|seconds|\")?\.?{_TRAILER}$", re.IGNORECASE),
    "focal_length": re.compile(rf"^\s*{_VALUE}\s*(?:mm)?{_TRAILER}$", re.IGNORECASE),
    "iso": re.compile(rf"^\s*(?:iso\s*)?{_VALUE}{_TRAILER}$", re.IGNORECASE),
}


def parse_flickr_value(name: str, text: Any) -> Optional[float]:
    """One ordinal tag from Flickr's formatting, in natural units (f-number, seconds, mm, ISO); else None."""
    if text is None or isinstance(text, bool):
        return None
    if isinstance(text, numbers.Real):
        return _valid(name, _number(text))
    if not isinstance(text, str):
        return None
    match = _PATTERNS[name].match(text)
    if match is None:
        return None
    return _valid(name, _fraction_value(match["num"], match["den"]))


def _parse_category(name: str, text: Any) -> Optional[int]:
    if isinstance(text, numbers.Real) and not isinstance(text, bool):
        return _code(text)
    if not isinstance(text, str) or not text.strip():
        return None
    key = text.strip().lower()
    if key.isdigit():
        return _code(key)
    names = {v.lower(): k for k, v in CATEGORY_NAMES[name].items()}
    return names.get(key, _CATEGORY_ALIASES[name].get(key))


def _lookup(mapping: Mapping[str, Any], name: str) -> Any:
    for key in FLICKR_KEYS[name]:
        if key in mapping:
            return mapping[key]
    return None


def _exif_section(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    # FDF's JSON files hold the tags under "EXIF"; accept either the whole file or that section.
    inner = mapping.get("EXIF") if isinstance(mapping, Mapping) else None
    return inner if isinstance(inner, Mapping) else (mapping if isinstance(mapping, Mapping) else {})


def parse_flickr_exif(mapping: Mapping[str, Any]) -> ExifTags:
    """Parse Flickr's formatted EXIF strings into :class:`ExifTags`, in correct units (chapter 1).

    ``{"Aperture Value": "F5.6", "Exposure Time": "1/250 sec", "Focal Length": "50.0 mm", "ISO Speed Ratings":
    "100"}`` gives aperture 5.6, exposure_time 0.004 s, focal_length 50.0, iso 100.0. Fractions ("F28/10",
    "10/1300 sec") and exposures of a second or more ("2 sec") are handled. A malformed, zero, negative or
    implausible value gives None, never an exception. Unknown category names give None.
    """
    exif = _exif_section(mapping)
    values: dict[str, Any] = {name: parse_flickr_value(name, _lookup(exif, name)) for name in ORDINAL_TAGS}
    values["make"] = _text(_lookup(exif, "make"))
    for name in CATEGORICAL_TAGS[1:]:
        values[name] = _parse_category(name, _lookup(exif, name))
    return ExifTags(**values)


def _published_number(text: str, head: str = "", tail: str = "") -> Optional[float]:
    """A number as the published code reads it: the part after ``head`` and before ``tail``, a decimal or a
    fraction. Returns None where the published code would raise."""
    body = text.split(head)[-1] if head else text
    body = body.split(tail)[0] if tail else body
    if body.count("/") > 1:
        return None
    num, slash, den = body.strip().partition("/")
    return _fraction_value(num.strip(), den.strip() if slash else None)


def published_exposure(text: Any) -> Optional[float]:
    """Exposure as the published code reads it (reference notes, difference 3): the text before "sec", then the part
    after its last "1/" if that is a number (so "1/250 sec" -> 250, the *denominator*), else the whole value in
    seconds ("0.5 sec" -> 0.5, "2 sec" -> 2, "10/1300 sec" -> 0.0077). "1/2 sec" and "2 sec" both give 2."""
    if not isinstance(text, str):
        return None
    body = text.split("sec")[0]
    tail = body.split("1/")[-1].strip()
    try:
        value = float(tail)
    except ValueError:
        return _published_number(body)
    return value if math.isfinite(value) else None


def parse_flickr_exif_published(mapping: Mapping[str, Any], swap_focal_exposure: bool = True) -> ExifTags:
    """Flickr EXIF as the published code turns it into labels, quirks included, for the book's comparison.

    * exposure: :func:`published_exposure` (denominator of "1/x", seconds otherwise);
    * with ``swap_focal_exposure`` (the code's behaviour) the exposure value lands in ``focal_length`` and the focal
      length in ``exposure_time``: the head named "focal length" is trained to rank exposures and vice versa.

    Unlike the published code, a value it could not parse gives None instead of an exception. Only the four ordinal
    tags are filled (the published code reads no others).
    """
    exif = _exif_section(mapping)
    as_str = lambda v: v if isinstance(v, str) else ("" if v is None else str(v))  # noqa: E731
    iso = _published_number(as_str(_lookup(exif, "iso")))
    aperture = _published_number(as_str(_lookup(exif, "aperture")), head="F")
    focal = _published_number(as_str(_lookup(exif, "focal_length")), tail=" mm")
    exposure = published_exposure(_lookup(exif, "exposure_time"))
    if swap_focal_exposure:
        focal, exposure = exposure, focal
    return ExifTags(aperture=aperture, exposure_time=exposure, focal_length=focal, iso=iso)


# ----------------------------------------------------------------------------------------------------------------
# Pairwise labels (Eq. 1)


def _as_float_tensor(tags: Any) -> torch.Tensor:
    tags = torch.as_tensor(tags)
    if tags.ndim != 1:
        raise ValueError(f"tags must be a 1-D tensor (one value per image), got shape {tuple(tags.shape)}")
    return tags if tags.is_floating_point() else tags.to(torch.get_default_dtype())


def pair_labels(tags: Any, tie: float = 0.5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Targets of all i<j pairs of a minibatch (the paper's Eq. 1), vectorised.

    ``tags`` is 1-D with one tag value per image; NaN marks a missing tag and every pair touching it is dropped.
    Returns ``(i, j, target)``: index tensors (int64) of the kept pairs and their targets in ``tags``' float dtype,
    1 where ``tags[i] > tags[j]``, 0 where smaller and ``tie`` (0.5, the published code's choice) where equal.
    ``tie=1.0`` gives the paper's ">=" reading of Eq. 1.
    """
    tags = _as_float_tensor(tags)
    i, j = torch.triu_indices(len(tags), len(tags), offset=1, device=tags.device)
    left, right = tags[i], tags[j]
    keep = ~(torch.isnan(left) | torch.isnan(right))
    i, j, left, right = i[keep], j[keep], left[keep], right[keep]
    target = torch.full_like(left, float(tie))
    target = torch.where(left > right, torch.ones_like(left), target)
    target = torch.where(left < right, torch.zeros_like(left), target)
    return i, j, target


def pair_label_matrix(tags: Any, tie: float = 0.5, upper_only: bool = True) -> torch.Tensor:
    """The (B, B) matrix of pair targets for a heatmap: entry (i, j) is :func:`pair_labels`' target for pair (i, j).

    NaN where undefined: the diagonal, pairs with a missing tag and, with ``upper_only`` (the pairs the loss
    uses), the lower triangle. With ``upper_only=False`` the lower triangle holds 1 - target (the same pair, seen
    the other way round).
    """
    tags = _as_float_tensor(tags)
    matrix = torch.full((len(tags), len(tags)), float("nan"), dtype=tags.dtype, device=tags.device)
    i, j, target = pair_labels(tags, tie=tie)
    matrix[i, j] = target
    if not upper_only:
        matrix[j, i] = 1.0 - target
    return matrix
