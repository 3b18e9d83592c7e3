"""Score your own photos (chapter 9): find the faces, crop them like the training data, and apply the detector.

For each file, :func:`score_files` reads it with :func:`aigfd_lite.images.reader.load_rgb` (transparency over the
bundle's background, white like the corpus), finds the faces with the
corpus's detector (dlib's HOG, on a copy shrunk to ``detect_max_side``), cuts each face like the corpus (a square
``crop_scale`` x the box, resized to ``face_size``), computes the network's feature and the GMM's log-likelihood
(Sec. II-B), and calls the face a photograph when the log-likelihood is at or above the threshold, AI-generated
below it. It yields one :data:`ROW_KEYS` dict per face; a file that cannot be read, or in which no face can be
scored, gets one row whose ``error`` says why, and the other files still run. No exception escapes for a bad input.
A folder that cannot be listed, or a symbolic link to a folder already walked, gets a row too
(:mod:`aigfd_lite.score.paths`); files skipped by their suffix are counted in :class:`ScoreStats`. A row's ``note`` says
what limits the result: a photo shrunk for detection (faces smaller than a size are missed there), detections not
scored (too small, weak), a multi-frame file of which only the first frame is scored.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

import numpy as np

from .bundle import as_scored
from ..images import UnreadableImage, read_image
from .paths import Skipped, image_files

ROW_KEYS = ("file", "face", "box", "log_likelihood", "threshold", "verdict", "error", "note")
HOG_WINDOW_PX = 80  # dlib's HOG finds faces down to its 80 px window, half that per upsampling
PHOTOGRAPH, GENERATED = "photograph", "ai-generated"


@dataclass
class ScoreStats:
    """What a scoring pass saw: files, how many files or folders could not be read (or scored), faces scored, folders
    not walked twice (symlinks), files ignored by their suffix, and the wall time."""

    files: int = 0
    unreadable: int = 0
    without_face: int = 0
    faces: int = 0
    repeated_folders: int = 0
    ignored_files: int = 0
    seconds: float = 0.0
    unreadable_files: list[str] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else float("nan")


def _row(file: str, **values) -> dict:
    return {key: values.get(key) for key in ROW_KEYS} | {"file": file}


#: Face detectors ``aigfd score --face-detector`` offers: dlib's HOG (offline; the one the bundle's faces were cut
#: with) and FAN's S3FD (the paper's; downloads its weights, so where it is available, e.g. on Colab).
FACE_DETECTORS = ("dlib", "fan")
FAN_MIN_CONFIDENCE = 0.5  # S3FD confidences below this are reported as weak detections


def find_faces(image: np.ndarray, prep, face_detector: str = "dlib"
               ) -> tuple[list[tuple[tuple[int, int, int, int], np.ndarray]], list[str]]:
    """The scorable faces of ``image`` as ``(box, crop)`` pairs, and why the other detections were skipped."""
    # imported here, not at the top: `import aigfd_lite.cli` stays free of pandas
    from ..faces import crop_face
    from ..faces import detect_faces_fan, detect_faces_scored

    if face_detector not in FACE_DETECTORS:
        raise ValueError(f"unknown face detector {face_detector!r}; choose one of {FACE_DETECTORS}")
    if face_detector == "fan":
        found, min_score, kind = detect_faces_fan(image), FAN_MIN_CONFIDENCE, "S3FD confidence"
    else:
        found = detect_faces_scored(image, upsample=prep.detect_upsample, max_side=prep.detect_max_side)
        min_score, kind = prep.detect_min_score, "HOG score"
    faces, skipped = [], []
    for box, score in found:
        side = min(box[2] - box[0], box[3] - box[1])
        if side < prep.min_face_px:
            skipped.append(f"face at {list(box)} too small ({side} px < {prep.min_face_px} px)")
        elif score < min_score:
            skipped.append(f"weak detection at {list(box)} ({kind} {score:.2f} < {min_score})")
        else:
            crop = crop_face(image, box, np.zeros((0, 2)), prep.crop_scale, prep.face_size)[0]
            faces.append((tuple(int(v) for v in box), crop))
    return faces, skipped


def detection_note(shape: tuple[int, ...], prep, face_detector: str = "dlib") -> str | None:
    """Why small faces of a photo this size are missed: it is shrunk to ``detect_max_side`` for dlib's detector,
    which then misses faces smaller than its window (None when nothing above ``min_face_px`` can be missed)."""
    side = max(shape[:2])
    if face_detector != "dlib" or side <= prep.detect_max_side:
        return None
    smallest = math.ceil(HOG_WINDOW_PX / 2 ** prep.detect_upsample * side / prep.detect_max_side)
    if smallest <= prep.min_face_px:
        return None
    return (f"photo shrunk from {side} to {prep.detect_max_side} px for face detection: faces smaller than about "
            f"{smallest} px in it are missed")


FRAME_NOTES = {"first_frame_only": "a multi-frame file: only its first frame is scored"}


def _score_batch(bundle, pending: list[tuple[str, list, str | None]], stats: ScoreStats) -> Iterator[dict]:
    """Rows for ``pending`` files' faces, scored in one feature batch."""
    # imported here, not at the top: `import aigfd_lite.cli` stays free of torchvision
    from ..models import extract_features

    crops = [crop for _, faces, _ in pending for _, crop in faces]
    scores = np.zeros(0)
    if crops:
        faces = as_scored(np.stack(crops), bundle.preprocessing)  # the path the GMM's faces took (chapter 5)
        features = extract_features(bundle.model, faces, input_size=bundle.preprocessing.input_size,
                                    batch_size=32, device="cpu", progress=False)
        scores = bundle.detector.score_samples(features)
    k = 0
    for name, faces, note in pending:
        for index, (box, _) in enumerate(faces):
            value = float(scores[k])
            k += 1
            if not math.isfinite(value):  # never a verdict from NaN (and the JSON output stays strict)
                stats.faces -= 1
                stats.unreadable += 1
                yield _row(name, face=index, box=list(box), threshold=round(bundle.threshold, 4), note=note,
                           error=f"unscorable: the detector's log-likelihood is {value}")
                continue
            yield _row(name, face=index, box=list(box), log_likelihood=round(value, 4),
                       threshold=round(bundle.threshold, 4),
                       verdict=PHOTOGRAPH if value >= bundle.threshold else GENERATED, note=note)


def score_files(paths: Iterable[str | Path], bundle, stats: Optional[ScoreStats] = None,
                batch_files: int = 16, face_detector: str = "dlib") -> Iterator[dict]:
    """Rows (dicts with :data:`ROW_KEYS`) for every face of every file in ``paths`` (folders: recursively).

    ``face_detector``: one of :data:`FACE_DETECTORS`; ``"fan"`` raises
    :class:`~aigfd_lite.faces.landmarks.LandmarkBackendUnavailable` up front where its weights cannot be had.
    """
    if face_detector == "fan":
        # imported here, not at the top: `import aigfd_lite.cli` stays free of pandas
        from ..faces.landmarks import fan_model

        fan_model("cpu")  # fail once, clearly, before any file is read
    stats = stats if stats is not None else ScoreStats()
    started = time.perf_counter()
    pending: list[tuple[str, list, str | None]] = []
    for path in image_files(paths):
        if isinstance(path, Skipped):
            if path.kind == "ignored":
                stats.ignored_files += 1
                continue
            yield from _score_batch(bundle, pending, stats)
            pending = []
            if path.kind == "unreadable":
                stats.unreadable += 1
                stats.unreadable_files.append(str(path.path))
                yield _row(str(path.path), error=f"unreadable: {path.path}: {path.reason}")
            else:
                stats.repeated_folders += 1
                yield _row(str(path.path), note=f"skipped: {path.reason}")
            continue
        name = str(path)
        stats.files += 1
        try:
            image, conversions = read_image(path, background=bundle.preprocessing.alpha_background)
            faces, skipped = find_faces(image, bundle.preprocessing, face_detector)
        except Exception as err:  # noqa: BLE001 - a decoder or detector failure on odd data: a row, not a traceback
            stats.unreadable += 1
            stats.unreadable_files.append(name)
            yield from _score_batch(bundle, pending, stats)
            pending = []
            reason = str(err) if isinstance(err, UnreadableImage) else f"{type(err).__name__}: {err}"
            yield _row(name, error=f"unreadable: {reason}")
            continue
        notes = [FRAME_NOTES[c] for c in conversions if c in FRAME_NOTES]
        notes += [n for n in [detection_note(image.shape, bundle.preprocessing, face_detector)] if n]
        if not faces:
            stats.without_face += 1
            yield from _score_batch(bundle, pending, stats)
            pending = []
            reason = "; ".join(skipped) if skipped else "the face detector found none"
            yield _row(name, error=f"no face: {reason}", note="; ".join(notes) or None)
            continue
        if skipped:
            notes.append(f"{len(skipped)} more detection(s) not scored: " + "; ".join(skipped))
        stats.faces += len(faces)
        pending.append((name, faces, "; ".join(notes) or None))
        if len(pending) >= batch_files:
            yield from _score_batch(bundle, pending, stats)
            pending = []
    yield from _score_batch(bundle, pending, stats)
    stats.seconds = time.perf_counter() - started
