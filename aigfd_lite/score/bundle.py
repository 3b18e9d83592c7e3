"""A detector bundle: everything ``aigfd score`` needs, in one folder, without pickle (chapter 9).

A bundle holds

* ``model.safetensors``: the pretext network's weights (chapter 4), enough to rebuild it with
  :func:`aigfd_lite.models.build_model` from the settings below;
* ``detector.safetensors``: the Gaussian mixture of real faces' features (chapter 5): weights, means, covariances,
  Cholesky factors of the precisions, the PCA projection when the profile uses one, and the training scores;
* ``bundle.json``: the format version, the network's settings (``backbone``, ``feature_dim``, ``tasks``), the
  detector's parameters and threshold, the preprocessing (face detection, crop, input size), where it came from
  (profile, run, training settings), the sha256 of both tensor files and of its own content
  (:mod:`.bundle_format` checks every field on load).

:func:`write_bundle` writes one atomically, :func:`load_bundle` checks and reads it back (:class:`BundleError`, with
a message saying what is wrong, for a missing, incomplete, tampered or foreign folder), and :func:`build_bundle`
makes one from any trained run (``aigfd bundle``). Safetensors files hold raw arrays and a JSON header only:
loading one runs no code, unlike a pickle.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .bundle_format import (FILES, FORMAT, HASH_FIELD, OLD_FORMATS, VERDICTS, BundleError, content_hash,
                            validate_arrays, validate_meta)
from ..fetch import sha256_of
from ..images import as_tested
from ..results import build_dir, check_replaceable, plain_json, staged_folder

__all__ = ["FILES", "FORMAT", "Bundle", "BundleError", "Preprocessing", "build_bundle", "load_bundle", "write_bundle"]
DEFAULT_BACKBONE = "resnet50"  # the network of chapter 4 unless the run's settings name another


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How a photo becomes the network's input: the corpus's face detection and crop (chapter 3), then resizing."""

    detect_max_side: int = 800  # photos are shrunk to this for detection (boxes mapped back)
    detect_upsample: int = 1
    detect_min_score: float = 0.3  # weaker HOG boxes are reported as such, not scored
    min_face_px: int = 64
    crop_scale: float = 1.3
    face_size: int = 128
    input_size: int = 224
    detector: str = "dlib-hog"
    # chapter 5's path for every face (aigfd_lite.evaluation.testsets.as_tested): down to common_size (None: not), then to
    # test_size, as the GMM's faces were; then the network resizes to input_size
    common_size: Optional[int] = None
    jpeg_quality: Optional[int] = None  # JPEG at common_size (lite: CelebA's 75, the real faces' encoder)
    test_size: int = 224
    alpha_background: tuple[int, int, int] = (255, 255, 255)  # transparency over white, as the corpus reads it

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha_background", tuple(int(v) for v in self.alpha_background))


@dataclasses.dataclass
class Bundle:
    """A loaded bundle: the network (eval mode, CPU), the fitted detector, the preprocessing and the JSON record."""

    model: Any
    detector: Any
    preprocessing: Preprocessing
    meta: dict
    path: Optional[Path] = None

    @property
    def threshold(self) -> float:
        return float(self.detector.threshold_)


def default_dir() -> Path:
    """``_build/bundle`` of the repository (or of the working folder): where the book writes the lite bundle."""
    return build_dir() / "bundle"


def _detector_arrays(detector) -> dict[str, np.ndarray]:
    gmm = detector.gmm_
    arrays = {"weights": gmm.weights_, "means": gmm.means_, "covariances": gmm.covariances_,
              "precisions_cholesky": gmm.precisions_cholesky_, "train_scores": detector.train_scores_}
    if getattr(detector, "calibration_scores_", None) is not None:
        arrays["calibration_scores"] = detector.calibration_scores_
    if detector.pca_ is not None:
        arrays.update(pca_mean=detector.pca_.mean_, pca_components=detector.pca_.components_,
                      pca_explained_variance=detector.pca_.explained_variance_)
    return {k: np.ascontiguousarray(np.asarray(v, dtype=np.float64)) for k, v in arrays.items()}


def _detector_from_arrays(arrays: dict[str, np.ndarray], params: dict, threshold: float, n_features: int):
    """Rebuild a fitted :class:`~aigfd_lite.detector.GMMDetector` from its arrays, through ``GMMDetector.load`` (the
    tested reader of its own no-pickle ``.npz``), so both formats give bit-identical scores."""
    # imported here, not at the top: `import aigfd_lite.cli` stays free of pandas, sklearn
    from ..detector import DETECTOR_FORMAT, GMMDetector

    meta = {"format": DETECTOR_FORMAT, "params": params, "threshold": threshold, "n_features_in": n_features,
            "has_pca": "pca_mean" in arrays}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gmm.npz"
        with open(path, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
        return GMMDetector.load(path)


def write_bundle(folder: str | Path, model, detector, preprocessing: Preprocessing, *,
                 model_settings: dict, source: dict | None = None) -> Path:
    """Write ``model`` (an ExifManipNet) and a fitted ``detector`` as a bundle into ``folder`` (replaced whole).

    ``model_settings`` must give ``feature_dim`` and ``tasks``; ``backbone`` defaults to ``"resnet50"``.
    """
    # imported here, not at the top: `import aigfd_lite.cli` stays free of safetensors (bundles only)
    from safetensors.numpy import save_file as save_numpy
    from safetensors.torch import save_file as save_torch

    folder = Path(folder)
    settings = {"backbone": DEFAULT_BACKBONE, **model_settings}
    settings["tasks"] = list(settings["tasks"])
    with staged_folder(folder, marker="bundle.json", what="bundle") as staging:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_torch(state, str(staging / "model.safetensors"))
        save_numpy(_detector_arrays(detector), str(staging / "detector.safetensors"))
        params = {k: v for k, v in detector.get_params().items()}
        meta = {
            "format": FORMAT,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "model": settings,
            "detector": {"class": "GMMDetector", "params": params, "threshold": float(detector.threshold_),
                         "n_features_in": int(detector.n_features_in_)},
            "preprocessing": plain_json(dataclasses.asdict(preprocessing)),
            "verdicts": dict(VERDICTS),
            "source": plain_json(source or {}),  # NaN -> null: bundle.json is strict JSON
            "sha256": {name: sha256_of(staging / name) for name in FILES[1:]},
        }
        meta[HASH_FIELD] = content_hash(meta)
        validate_meta(meta)  # a bundle this writes is one load_bundle accepts
        (staging / "bundle.json").write_text(json.dumps(meta, indent=1, allow_nan=False))
    return folder


def _rebuild_model(settings: dict):
    # imported here, not at the top: `import aigfd_lite.cli` stays free of torchvision
    from ..models import build_model

    kwargs = {"init": "random", "feature_dim": int(settings["feature_dim"]), "tasks": tuple(settings["tasks"])}
    backbone = settings.get("backbone", DEFAULT_BACKBONE)
    if "backbone" in inspect.signature(build_model).parameters:
        kwargs["backbone"] = backbone
    elif backbone != DEFAULT_BACKBONE:
        raise BundleError(f"the bundle's network uses backbone {backbone!r}, which this version of aigfd_lite "
                          "cannot build; update the package")
    return build_model(**kwargs)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not strict JSON")


def load_bundle(folder: str | Path | None = None) -> Bundle:
    """Check and load a bundle (default: :func:`default_dir`). Raises :class:`BundleError` with a clear message."""
    # imported here, not at the top: `import aigfd_lite.cli` stays free of safetensors (bundles only)
    from safetensors import SafetensorError
    from safetensors.numpy import load_file as load_numpy
    from safetensors.torch import load_file as load_torch

    folder = Path(folder) if folder is not None else default_dir()
    how = ("make one with `aigfd bundle` (from a trained run) or run chapter 9 of the book, "
           "or pass --bundle DIR")
    if not folder.is_dir():
        raise BundleError(f"no detector bundle at {folder}: {how}")
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise BundleError(f"{folder} is not a complete bundle (missing {', '.join(missing)}): {how}")
    try:
        meta = json.loads((folder / "bundle.json").read_text(), parse_constant=_refuse_constant)
    except (OSError, UnicodeDecodeError, ValueError) as err:  # JSONDecodeError is a ValueError
        raise BundleError(f"{folder}/bundle.json is unreadable ({err}): {how}") from err
    found = meta.get("format") if isinstance(meta, dict) else None
    if found in OLD_FORMATS:
        raise BundleError(f"{folder} holds format {found!r}, written by an older aigfd_lite (its preprocessing "
                          f"differs from chapter 5's): rebuild it with `aigfd bundle` or rerun chapter 9")
    if found != FORMAT:
        raise BundleError(f"{folder} holds format {found!r}, not {FORMAT!r}: {how}")
    try:
        validate_meta(meta)
    except BundleError as err:
        raise BundleError(f"{folder}: {err}: {how}") from None
    for name in FILES[1:]:
        if sha256_of(folder / name) != meta["sha256"][name]:
            raise BundleError(f"{folder}/{name} does not match the sha256 in bundle.json (altered or damaged): {how}")
    try:
        model = _rebuild_model(meta["model"])
        model.load_state_dict(load_torch(str(folder / "model.safetensors")), strict=True)
        det = meta["detector"]
        arrays = load_numpy(str(folder / "detector.safetensors"))
        validate_arrays(arrays, meta)
        detector = _detector_from_arrays(arrays, det["params"], float(det["threshold"]), int(det["n_features_in"]))
        preprocessing = Preprocessing(**meta["preprocessing"])
    except BundleError as err:
        raise BundleError(f"{folder}: {err}: {how}") from None
    except (KeyError, TypeError, ValueError, RuntimeError, SafetensorError) as err:
        raise BundleError(f"{folder} is damaged or from another version ({type(err).__name__}: {err}): {how}") from err
    return Bundle(model.eval(), detector, preprocessing, meta, folder)


def preprocessing_of(cfg) -> Preprocessing:
    """The preprocessing of profile ``cfg``: the corpus's detection settings and crop, chapter 5's path to the test
    size (:func:`aigfd_lite.evaluation.recipe.view_of`) and the network's input size."""
    # imported here, not at the top: `import aigfd_lite.cli` stays free of pandas
    from ..faces import corpus as faces
    from ..evaluation import view_of

    view = view_of(cfg)
    return Preprocessing(detect_max_side=faces.DETECT_MAX_SIDE, detect_upsample=faces.DETECT_UPSAMPLE,
                         detect_min_score=faces.DETECT_MIN_SCORE, min_face_px=int(cfg.min_face_px),
                         crop_scale=float(cfg.crop_scale), face_size=int(cfg.face_size),
                         input_size=int(cfg.input_size), common_size=view["native_size"],
                         jpeg_quality=view["jpeg_quality"], test_size=int(view["test_size"]))


def as_scored(crops: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """Face crops (uint8 (N, face_size, face_size, 3)) as the bundle's GMM faces were seen: chapter 5's path."""
    return as_tested(crops, native_size=prep.common_size, test_size=prep.test_size, jpeg_quality=prep.jpeg_quality)


def build_bundle(cfg, run_name: str = "ours", folder: str | Path | None = None, detector=None) -> Path:
    """Bundle the finished run ``run_name`` of profile ``cfg`` with a detector fitted as in chapter 5.

    The detector is chapter 5's (:func:`aigfd_lite.evaluation.recipe.chapter_detector` on :func:`~aigfd_lite.evaluation.recipe.
    detector_faces`: the same faces, preprocessing, K and threshold); ``detector``: an already fitted one instead.
    Raises ``FileNotFoundError`` when the run was never finished (train it first).
    """
    # imported here, not at the top: `import aigfd_lite.cli` stays free of torchvision
    from ..models import extract_features
    from ..evaluation import chapter_detector, detector_faces, proxy_faces
    from ..train import checkpoint_dir, load_trained

    folder = check_replaceable(folder or default_dir(), "bundle.json", "bundle")  # before minutes of work
    model = load_trained(cfg, run_name)
    config = dict(getattr(model, "train_config", {}) or {})
    choice = None
    if detector is None:
        def features(images):
            return None if images is None else extract_features(model, images, input_size=cfg.input_size,
                                                                device="cpu", progress=False)

        detector, choice, _ = chapter_detector(cfg, features(detector_faces(cfg)), features(proxy_faces(cfg)))
    calibration = getattr(detector, "calibration_scores_", None)
    calibration = [] if calibration is None else calibration
    settings = {"backbone": config.get("backbone", DEFAULT_BACKBONE),
                "feature_dim": int(config.get("feature_dim", getattr(model, "feature_dim", 768))),
                "tasks": list(config.get("tasks", ["exif", "manipulation"]))}
    source = {"profile": cfg.name, "run_name": run_name, "checkpoint": str(checkpoint_dir(cfg.name, run_name)),
              "train_config": config, "detector_choice": choice.to_json() if choice else None,
              "gmm_faces": {"n_fit": len(detector.train_scores_), "n_calibration": len(calibration),
                            "what": "chapter 5's GMM faces (aigfd_lite.evaluation.recipe.detector_faces)"}}
    return write_bundle(folder, model, detector, preprocessing_of(cfg),
                        model_settings=settings, source=source)
