"""A miniature of the paper's data folders in the official layout, built from faces at hand (chapter 11).

The full profile reads the authors' folders as distributed (``SSL_training_data/`` for training, ``data/`` for the
test sets; see :mod:`aigfd_lite.fdf` and :mod:`aigfd_lite.evaluation.testsets`). Nothing that large exists offline, so this
module writes the same layout in miniature:

* :func:`write_training_tree`: 128 px face images, Flickr-formatted EXIF strings in one JSON per photo, the id
  map as a plain pickle (like the authors'), FDF's metadata JSON (box and 7 keypoints per face) and, optionally,
  four manipulated files per face;
* :func:`write_test_tree`: ``celeba-face/`` with ``train.txt`` / ``test.txt`` and the nine generator folders;
* :func:`write_synthetic_tree`: N entries made cheaply (one image hard-linked N times, a pool of EXIF JSONs
  hard-linked per photo) to measure how the index scales (``tools/bench_fdf_index.py``).

:func:`lite_miniature` builds both trees from the lite corpus of chapter 3. Everything in it is a stand-in, and its
``README.txt`` says so: the faces are the lite corpus, tags without real EXIF are simulated, and every generator
folder holds the lite DCGAN's faces.
"""
from __future__ import annotations

import json
import math
import os
import pickle
import shutil
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np
from PIL import Image

from ..camera import sample_tags
from ..fdf import LayoutPaths
from ..manipulate import MANIPULATIONS, make_training_image

PathLike = Union[str, Path]
FIRST_NAME = 100000  # FDF's image names are integers
FIRST_PHOTO_ID = 10_000_000_000  # Flickr photo ids are ~11-digit integers
MAX_LINKS = 60_000  # hard links per pool file (ext4 allows 65,000)
#: The face box inside a lite corpus crop: the crop is 1.3 x the detector box about its centre.
CORPUS_BOX = (0.5 - 0.5 / 1.3, 0.5 - 0.5 / 1.3, 0.5 + 0.5 / 1.3, 0.5 + 0.5 / 1.3)


def flickr_strings(tags: Sequence[float]) -> dict[str, str]:
    """Flickr's formatted EXIF strings for (aperture, exposure s, focal mm, ISO); NaN tags are left out.

    ``(5.6, 0.004, 50, 100)`` -> ``{"Aperture Value": "F5.6", "Exposure Time": "1/250 sec", "Focal Length":
    "50.0 mm", "ISO Speed Ratings": "100"}``; exposures of a second or more read ``"2 sec"``.
    """
    aperture, exposure, focal, iso = (float(t) for t in tags)
    out = {}
    if math.isfinite(aperture):
        out["Aperture Value"] = f"F{aperture:g}"
    if math.isfinite(exposure) and exposure > 0:
        inverse = 1.0 / exposure
        near_fraction = exposure < 1 and abs(inverse - round(inverse)) <= 0.01 * inverse
        out["Exposure Time"] = f"1/{round(inverse)} sec" if near_fraction else f"{exposure:g} sec"
    if math.isfinite(focal):
        out["Focal Length"] = f"{focal:.1f} mm"
    if math.isfinite(iso):
        out["ISO Speed Ratings"] = f"{int(round(iso))}"
    return out


def fdf_keypoints(landmarks68: np.ndarray, size: int) -> np.ndarray:
    """FDF-like 7 keypoints (nose, right/left eye, right/left ear, right/left shoulder), normalised (7, 2), from 68
    iBUG points: ears at the jaw's ends, shoulders below the jaw corners at the image's bottom edge (stand-ins)."""
    p = np.asarray(landmarks68, dtype=np.float64) / size
    points = [p[30], p[36:42].mean(0), p[42:48].mean(0), p[0], p[16], [p[4, 0], 1.0], [p[12, 0], 1.0]]
    return np.clip(np.array(points, dtype=np.float64), 0.0, 1.0)


def _save_png(image: np.ndarray, path: Path, size: int = 128) -> None:
    im = Image.fromarray(np.asarray(image, dtype=np.uint8))
    if im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR)
    im.save(path)


def write_training_tree(root: PathLike, images: np.ndarray, tags: np.ndarray, *,
                        boxes: Optional[np.ndarray] = None, keypoints: Optional[np.ndarray] = None,
                        manipulated: Optional[np.ndarray] = None) -> Path:
    """Write ``root/SSL_training_data`` for N faces: ``images`` uint8 (N, H, W, 3) (saved at 128 px), ``tags``
    (N, 4) in TAGS order (NaN: field absent), ``boxes`` (N, 4) normalised (default :data:`CORPUS_BOX`),
    ``keypoints`` (N, 7, 2), ``manipulated`` (N, 4, H, W, 3) or None (no ``face_dataaug_neg`` files)."""
    p = LayoutPaths.of(Path(root) / "SSL_training_data")
    for folder in (p.exif_dir, p.image_dir, p.fdf_dir / "bounding_box", p.fdf_dir / "landmarks"):
        folder.mkdir(parents=True, exist_ok=True)
    n = len(images)
    boxes = np.tile(CORPUS_BOX, (n, 1)) if boxes is None else np.asarray(boxes, dtype=np.float64)
    id_map, meta = {}, {}
    for i in range(n):
        name, photo_id = str(FIRST_NAME + i), str(FIRST_PHOTO_ID + i)
        _save_png(images[i], p.image_dir / f"{name}.png")
        if manipulated is not None:
            p.neg_dir.mkdir(parents=True, exist_ok=True)
            for k in range(manipulated.shape[1]):
                _save_png(manipulated[i, k], p.neg_dir / f"{name}_{k}.png")
        (p.exif_dir / f"{photo_id}.json").write_text(json.dumps({"EXIF": flickr_strings(tags[i])}))
        id_map[name] = photo_id
        entry = {"bounding_box": boxes[i].tolist(), "category": "training",
                 "license": "stand-in (see README.txt)"}
        if keypoints is not None:
            entry["landmark"] = np.asarray(keypoints[i]).tolist()
        meta[name] = entry
    p.id_map.write_bytes(pickle.dumps(id_map, protocol=4))  # a plain dict, like the authors' file
    p.metainfo.write_text(json.dumps(meta))
    np.save(p.fdf_dir / "bounding_box" / "128.npy", np.round(boxes * 128).astype(np.int64))
    if keypoints is not None:
        np.save(p.fdf_dir / "landmarks" / "128.npy", np.asarray(keypoints, dtype=np.float32))
    return p.root


def write_test_tree(root: PathLike, reals: np.ndarray, generated: Mapping[str, np.ndarray], *,
                    n_train: int) -> Path:
    """Write ``root/data``: ``celeba-face/<i>.png`` (the first ``n_train`` listed in ``train.txt``, the rest in
    ``test.txt``) and one folder per entry of ``generated`` (folder name -> uint8 images)."""
    data = Path(root) / "data"
    (data / "celeba-face").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, image in enumerate(reals):
        _save_png(image, data / "celeba-face" / f"{i:05d}.png", size=image.shape[0])
        lines.append(f"celeba-face/{i:05d}.png")
    (data / "train.txt").write_text("\n".join(lines[:n_train]) + "\n")
    (data / "test.txt").write_text("\n".join(lines[n_train:]) + "\n")
    for folder, images in generated.items():
        (data / folder).mkdir(exist_ok=True)
        for i, image in enumerate(images):
            _save_png(image, data / folder / f"{i:05d}.png", size=image.shape[0])
    return data


def write_synthetic_tree(root: PathLike, n: int, *, seed: int = 0, manipulated: bool = True,
                         distinct_json: int = 997, size: int = 16) -> Path:
    """``root/SSL_training_data`` with ``n`` FDF entries made cheaply: one ``size`` px image hard-linked as every
    face (and its four manipulated files), a pool of ``distinct_json`` EXIF JSONs hard-linked per photo; the id map,
    metadata JSON and FDF arrays are written in full. Needs a file system with hard links."""
    rng = np.random.default_rng(seed)
    p = LayoutPaths.of(Path(root) / "SSL_training_data")
    for folder in (p.exif_dir, p.image_dir, p.neg_dir, p.fdf_dir / "bounding_box", p.fdf_dir / "landmarks"):
        folder.mkdir(parents=True, exist_ok=True)
    pool = Path(root) / "pool"
    pool.mkdir(exist_ok=True)
    first = pool / "face_0.png"
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(first)
    links = [0]

    def link_image(target: Path) -> None:  # file systems cap links per file (ext4: 65,000): copy every 60,000
        k = links[0] // MAX_LINKS
        source = pool / f"face_{k}.png"
        if not source.exists():
            shutil.copyfile(first, source)
        os.link(source, target)
        links[0] += 1

    pool_tags = sample_tags(rng, distinct_json)
    pool_json = []
    for j in range(distinct_json):
        path = pool / f"exif_{j}.json"
        path.write_text(json.dumps({"EXIF": flickr_strings(pool_tags[j]), "Camera": "stand-in"}))
        pool_json.append(path)
    boxes = np.clip(rng.normal([0.3, 0.25, 0.7, 0.75], 0.02, (n, 4)), 0, 1)
    points = rng.uniform(0.2, 0.8, (n, 7, 2))
    id_map, meta = {}, {}
    for i in range(n):
        name, photo_id = str(FIRST_NAME + i), str(FIRST_PHOTO_ID + i)
        link_image(p.image_dir / f"{name}.png")
        if manipulated:
            for k in range(4):
                link_image(p.neg_dir / f"{name}_{k}.png")
        os.link(pool_json[i % distinct_json], p.exif_dir / f"{photo_id}.json")
        id_map[name] = photo_id
        meta[name] = {"bounding_box": [round(v, 5) for v in boxes[i]],
                      "landmark": np.round(points[i], 5).tolist(), "category": "training",
                      "license": "stand-in", "photo_url": f"stand-in/{photo_id}"}
    p.id_map.write_bytes(pickle.dumps(id_map, protocol=4))
    p.metainfo.write_text(json.dumps(meta))
    np.save(p.fdf_dir / "bounding_box" / "128.npy", np.round(boxes * 128).astype(np.int64))
    np.save(p.fdf_dir / "landmarks" / "128.npy", points.astype(np.float32))
    return p.root


def _manipulated_versions(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The four precomputed versions as the published files were made: at 224 px from the 128 px face, back at
    128 px, one eye, the mouth rotated (the code's variants), in :data:`aigfd_lite.manipulate.MANIPULATIONS` order."""
    return np.stack([make_training_image(image, landmarks, kind, rng, symmetric=False, eyes="one",
                                         vertical="rotate180") for kind in MANIPULATIONS])


def lite_miniature(cfg, root: PathLike, *, n_faces: Optional[int] = 48, n_generated: int = 12,
                   seed: int = 2024) -> dict[str, Path]:
    """Both trees from the lite corpus (chapter 3): training faces (real EXIF where the photo has it, simulated
    tags otherwise) with their four manipulated files; CelebA-HQ-like reals from the test split; the lite DCGAN's
    faces in each of the nine generator folders. Returns the two roots; ``root/README.txt`` says what is stand-in.
    Fetch-or-build: a tree already built with the same settings is reused."""
    # imported here, not at the top: `import aigfd_lite.data` stays free of pandas
    from ..faces import ORDINAL_TAGS, build_corpus
    from ..evaluation import sample_dcgan
    from ..evaluation import GENERATOR_FOLDERS

    root = Path(root)
    stamp = json.dumps(dict(n_faces=n_faces, n_generated=n_generated, seed=seed, version=1))
    roots = {"training": root / "SSL_training_data", "data": root / "data"}
    if (root / "settings.json").is_file() and (root / "settings.json").read_text() == stamp:
        return roots
    if root.exists() and any(root.iterdir()):
        if not (root / "README.txt").is_file():
            raise FileExistsError(f"{root} is not empty and not a miniature: choose an empty or new folder")
        for folder in roots.values():  # ours (README.txt marks it): rebuilt from scratch
            shutil.rmtree(folder, ignore_errors=True)
        (root / "settings.json").unlink(missing_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    corpus = build_corpus(cfg, progress=False)
    train, test = corpus.subset("train"), corpus.subset("test")
    n = len(train) if n_faces is None else min(n_faces, len(train))
    tags = train.table[list(ORDINAL_TAGS)].to_numpy(dtype=np.float64)[:n]
    real_exif = ~np.isnan(tags).any(axis=1)
    tags[~real_exif] = sample_tags(rng, int((~real_exif).sum()))
    images, landmarks = train.images[:n], train.landmarks[:n]
    (root / "README.txt").write_text(
        "A miniature of the paper's data folders, built by aigfd_lite.data.miniature.lite_miniature from the lite "
        f"corpus. Training: {n} lite faces, {int(real_exif.sum())} with their photo's real EXIF, the others with "
        "simulated camera settings; boxes and 7 keypoints derived from the 68 landmarks. Test: CelebA-HQ stand-ins "
        "are lite faces; every generator folder holds the lite DCGAN's faces (not the named generator's).\n")
    keypoints = np.stack([fdf_keypoints(lm, images.shape[1]) for lm in landmarks]) if n else None
    negs = np.stack([_manipulated_versions(im, lm, rng) for im, lm in zip(images, landmarks)]) if n else None
    training = write_training_tree(root, images, tags, keypoints=keypoints, manipulated=negs)
    reals = np.concatenate([train.images[n:], test.images])
    fakes = sample_dcgan(n_generated * len(GENERATOR_FOLDERS), seed=seed)  # one model load, one batch
    generated = {folder: fakes[k * n_generated:(k + 1) * n_generated] for k, folder in
                 enumerate(GENERATOR_FOLDERS.values())}
    data = write_test_tree(root, reals, generated, n_train=len(reals) // 2)
    (root / "settings.json").write_text(stamp)  # last: a half-built tree is rebuilt, never reused
    return {"training": training, "data": data}
