"""Flickr's formatted EXIF strings (FDF's JSON files, full profile) as :class:`~aigfd_lite.exif.ExifTags` (chapter 1).

:func:`parse_flickr_exif` parses them in correct units; :func:`parse_flickr_exif_published` reproduces how the
published code parses them, quirks included (exposure units, focal/exposure swap), so the book can show the
difference. A malformed, zero, negative or implausible value becomes ``None``, never an exception.
"""
from __future__ import annotations

import math
import numbers
import re
from typing import Any, Mapping, Optional

from .tags import (
    CATEGORICAL_TAGS, CATEGORY_NAMES, ORDINAL_TAGS, ExifTags, _code, _fraction_value, _number, _text, _valid,
)

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
