"""What a detector bundle's ``bundle.json`` may hold, and its content hash (chapter 9; the bundle: :mod:`.bundle`).

``aigfd score`` runs on bundles someone else may have written, so every field is checked on load, type and range,
before any of it is used: a NaN or ``true`` threshold would call every face AI-generated, a ``face_size`` of 100000
would allocate tens of gigabytes, a ``detect_max_side`` of 0 would find no face in any photo. A wrong value raises
:class:`BundleError` naming the field, the value found and what is allowed.

``content_sha256`` is the sha256 of the record itself (every other field, as canonical JSON: sorted keys, no
spaces), so an edited or damaged ``bundle.json`` is refused like an altered tensor file. It detects accidents and
casual edits, not a forger: anyone can recompute it (a bundle is trusted as much as whoever gave it to you).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Callable, Mapping

import numpy as np

FORMAT = "aigfd-bundle/3"
# 1: bundle.json not hash-protected nor validated on write; 2: no JPEG step in the preprocessing. Both: rebuild
OLD_FORMATS = ("aigfd-bundle/1", "aigfd-bundle/2")
FILES = ("bundle.json", "model.safetensors", "detector.safetensors")
HASH_FIELD = "content_sha256"
VERDICTS = {"at_or_above_threshold": "photograph", "below_threshold": "ai-generated"}
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BundleError(ValueError):
    """A bundle folder that is missing, incomplete, altered or not a bundle; the message says which and how to fix."""


def content_hash(meta: Mapping[str, Any]) -> str:
    """The sha256 of ``meta`` without its ``content_sha256`` field, as canonical strict JSON."""
    record = {k: v for k, v in meta.items() if k != HASH_FIELD}
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


# A check returns None when the value is allowed, else a description of what is allowed.
Check = Callable[[Any], "str | None"]


def integer(low: int, high: int) -> Check:
    def check(value):
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return None if ok else f"an integer from {low} to {high}"
    return check


def real(low: float, high: float, *, open_low: bool = False) -> Check:
    def check(value):
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
              and (low < value if open_low else low <= value) and value <= high)
        return None if ok else f"a finite number {'>' if open_low else '>='} {low} and <= {high}"
    return check


def finite(value) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return None if ok else "a finite number (not NaN, infinity or true/false)"


def one_of(*allowed) -> Check:
    return lambda value: None if any(value == a and type(value) is type(a) for a in allowed) else \
        f"one of {', '.join(json.dumps(a) for a in allowed)}"


def optional(check: Check) -> Check:
    return lambda value: None if value is None else (None if check(value) is None else f"null or {check(value)}")


def text(value) -> str | None:
    return None if isinstance(value, str) and value else "a non-empty string"


def flag(value) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def rgb(value) -> str | None:
    ok = isinstance(value, list) and len(value) == 3 and all(integer(0, 255)(v) is None for v in value)
    return None if ok else "a list of three integers from 0 to 255"


def tasks(value) -> str | None:
    # imported here, not at the top: `import aigfd_lite.cli` stays free of torchvision
    from ..models import TASKS

    ok = (isinstance(value, list) and value and len(set(map(str, value))) == len(value)
          and all(isinstance(t, str) and t in TASKS for t in value))
    return None if ok else f"a non-empty list of distinct tasks from {list(TASKS)}"


def digests(value) -> str | None:
    ok = (isinstance(value, dict) and set(value) == set(FILES[1:])
          and all(isinstance(v, str) and _SHA256.fullmatch(v) for v in value.values()))
    return None if ok else f"an object giving the sha256 (64 hex digits) of each of {', '.join(FILES[1:])}"


def mapping(value) -> str | None:
    return None if isinstance(value, dict) else "an object"


MODEL = {"backbone": text, "feature_dim": integer(1, 65536), "tasks": tasks}
PREPROCESSING = {
    "detect_max_side": integer(64, 16384),  # the photo's longer side for face detection
    "detect_upsample": integer(0, 3),  # each doubles the detection image: 4x the memory
    "detect_min_score": real(-10.0, 10.0),
    "min_face_px": integer(1, 16384),
    "crop_scale": real(0.5, 4.0),
    "face_size": integer(8, 2048),
    "input_size": integer(8, 2048),
    "detector": one_of("dlib-hog"),
    "alpha_background": rgb,
    "common_size": optional(integer(8, 2048)),  # chapter 5's common resolution (lite: the generators' smallest)
    "jpeg_quality": optional(integer(1, 100)),  # JPEG at common_size (None: none)
    "test_size": integer(8, 2048),
}
DETECTOR_PARAMS = {
    "n_components": integer(1, 4096),
    "covariance_type": one_of("full", "tied", "diag", "spherical"),
    "reg_covar": real(0.0, 1e6),
    "false_alarm": real(0.0, 1.0),
    "threshold_rule": one_of("split-conformal", "train-quantile"),
    "calibration_fraction": real(0.0, 1.0),
    "l2_normalize": flag,
    "pca_components": optional(integer(1, 65536)),
    "init_params": one_of("kmeans", "k-means++", "random", "random_from_data"),
    "max_iter": integer(1, 1_000_000),
    "n_init": integer(1, 1000),
    "random_state": optional(integer(0, 2**32 - 1)),
}
DETECTOR = {"class": one_of("GMMDetector"), "params": mapping, "threshold": finite,
            "n_features_in": integer(1, 65536)}
TOP = {"format": text, "created": text, "model": mapping, "detector": mapping, "preprocessing": mapping,
       "verdicts": one_of(VERDICTS), "source": mapping, "sha256": digests, HASH_FIELD: text}


def _check_fields(record: Any, spec: Mapping[str, Check], where: str, required: bool = True) -> None:
    if not isinstance(record, dict):
        raise BundleError(f"bundle.json field {where or 'the record'} is {json.dumps(record)[:80]}; "
                          "allowed: an object")
    unknown = sorted(set(record) - set(spec))
    if unknown:
        raise BundleError(f"bundle.json field {where}{'.' if where else ''}{unknown[0]} is not a field of the format "
                          f"(allowed: {', '.join(spec)})")
    for name, check in spec.items():
        field = f"{where}.{name}" if where else name
        if name not in record:
            if required:
                raise BundleError(f"bundle.json lacks the field {field} (allowed: {check(object()) or 'any'})")
            continue
        allowed = check(record[name])
        if allowed is not None:
            raise BundleError(f"bundle.json field {field} is {json.dumps(record[name], default=str)[:80]}; "
                              f"allowed: {allowed}")


def validate_meta(meta: Any) -> None:
    """Check every field of a ``bundle.json`` record of :data:`FORMAT` (raises :class:`BundleError`)."""
    _check_fields(meta, TOP, "")
    if meta["format"] != FORMAT:
        raise BundleError(f"bundle.json field format is {meta['format']!r}; allowed: {FORMAT!r}")
    if meta[HASH_FIELD] != content_hash(meta):
        raise BundleError(f"bundle.json does not match its {HASH_FIELD} (edited or damaged)")
    _check_fields(meta["model"], MODEL, "model")
    _check_fields(meta["detector"], DETECTOR, "detector")
    _check_fields(meta["detector"]["params"], DETECTOR_PARAMS, "detector.params", required=False)
    _check_fields(meta["preprocessing"], PREPROCESSING, "preprocessing")
    n_features, feature_dim = meta["detector"]["n_features_in"], meta["model"]["feature_dim"]
    if n_features != feature_dim:
        raise BundleError(f"bundle.json field detector.n_features_in is {n_features}; allowed: the network's "
                          f"model.feature_dim, {feature_dim}")
    pca = meta["detector"]["params"].get("pca_components")
    if pca is not None and pca > n_features:
        raise BundleError(f"bundle.json field detector.params.pca_components is {pca}; allowed: null or an "
                          f"integer from 1 to detector.n_features_in ({n_features})")


def _covariance_shape(kind: str, k: int, d: int) -> tuple[int, ...]:
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[kind]


def validate_arrays(arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    """Check that ``detector.safetensors``'s arrays have the shapes ``bundle.json`` implies, and are finite."""
    det = meta["detector"]
    params, n_features = det["params"], det["n_features_in"]
    pca = params.get("pca_components")
    k = params.get("n_components", arrays["weights"].shape[0] if "weights" in arrays else 0)
    d = pca if pca is not None else n_features
    kind = params.get("covariance_type", "full")
    expected = {"weights": (k,), "means": (k, d), "covariances": _covariance_shape(kind, k, d),
                "precisions_cholesky": _covariance_shape(kind, k, d), "train_scores": None}
    if pca is not None:
        expected |= {"pca_mean": (n_features,), "pca_components": (d, n_features), "pca_explained_variance": (d,)}
    optional_names = {"calibration_scores"}
    unknown = sorted(set(arrays) - set(expected) - optional_names)
    missing = sorted(set(expected) - set(arrays))
    if unknown or missing:
        raise BundleError(f"detector.safetensors holds {sorted(arrays)}; expected {sorted(expected)} for the "
                          f"detector bundle.json describes (missing {missing}, unexpected {unknown})")
    for name, array in arrays.items():
        shape = expected.get(name)
        if (shape is not None and tuple(array.shape) != shape) or (shape is None and array.ndim != 1):
            raise BundleError(f"detector.safetensors array {name} has shape {tuple(array.shape)}; bundle.json "
                              f"(n_components {k}, {d} features, {kind} covariance) implies {shape or '(n,)'}")
        if not np.isfinite(array).all():
            raise BundleError(f"detector.safetensors array {name} holds NaN or infinite values")
