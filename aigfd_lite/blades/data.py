"""BLADES' training items: a face with its 11 task labels (chapter 7, ``book/07_blades.md``).

An item is ``(image (3, S, S), levels (4,) int64, categorical (5,) int64, manipulated int64, parts (2,) float32)``:
the three-level ordinal EXIF labels (-1: missing), the five categorical EXIF class indices (-1: missing or a value
outside the classes), real / manipulated, and the eye / mouth labels. The labels come from the one task table
(:mod:`aigfd_lite.blades.tasks`).

* lite (:class:`BladesDataset`): chapter 4's items (:class:`aigfd_lite.pretext.PretextDataset`) plus categorical
  tags: real EXIF read from the photo file where it has them, else simulated and rendered
  (:mod:`aigfd_lite.blades.categorical_camera`; the exposure program also chooses the face's simulated ordinal settings).
* full (:class:`FDFBladesDataset`): the official FDF layout with Flickr's real categorical EXIF. Which manipulation
  each ``face_dataaug_neg/<name>_k.png`` holds is not published; :data:`FDF_KIND_ORDER` assumes the order of
  :data:`aigfd_lite.manipulate.MANIPULATIONS` (the parts labels of the full profile rest on that assumption).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from .tasks import categorical_targets, parts_targets, tertile_edges, to_levels
from .categorical_camera import program_tags, render_categorical, sample_categorical
from ..manipulate import MANIPULATIONS
from ..pretext import PretextDataset, tags_of, to_tensor
from ..profiles import resolve
from ..faces import build_corpus
from ..fdf import FDFLayout
from ..exif import parse_flickr_exif
from ..faces import corpus_photos
from ..exif import read_exif

FDF_KIND_ORDER: tuple[str, ...] = MANIPULATIONS  # an assumption, see the module docstring
_STREAM_CATEGORICAL, _STREAM_CATEGORICAL_RENDER = 21, 22


def corpus_categorical(table: Any, cache: Any = None) -> np.ndarray:
    """(N, 5) real categorical EXIF class indices of the corpus faces (-1 where a photo has none)."""
    paths = {(p.source, p.file): p.path for p in corpus_photos(cache)}
    out = np.full((len(table), 5), -1, dtype=np.int64)
    read: dict[Any, np.ndarray] = {}
    for row, (source, file, has) in enumerate(zip(table["source"], table["file"], table["has_camera_exif"])):
        path = paths.get((source, file))
        if not has or path is None:
            continue
        if path not in read:
            try:
                read[path] = categorical_targets(read_exif(path).categorical())
            except Exception:  # noqa: BLE001 - unreadable EXIF: the tags are simply missing (-1)
                read[path] = np.full(5, -1, dtype=np.int64)
        out[row] = read[path]
    return out


class BladesDataset(PretextDataset):
    """Lite BLADES items (see the module docstring). ``categorical`` (N, 5): the real class indices (-1: none);
    ``level_edges`` (4, 2): tertile edges of the training data (None: computed from this dataset's tags)."""

    def __init__(self, images: np.ndarray, landmarks: np.ndarray, tags: np.ndarray, has_exif: np.ndarray,
                 categorical: np.ndarray, level_edges: Optional[np.ndarray] = None, **kwargs: Any) -> None:
        super().__init__(images, landmarks, tags, has_exif, **kwargs)
        categorical = np.asarray(categorical, dtype=np.int64)
        if categorical.shape != (len(images), 5):
            raise ValueError(f"categorical must be (N, 5) = ({len(images)}, 5), got {categorical.shape}")
        self.categorical = np.where(self.has_exif[:, None], categorical, -1)
        for i in np.flatnonzero(self.simulated):
            rng = np.random.default_rng([self.seed, _STREAM_CATEGORICAL, int(i)])
            self.categorical[i] = sample_categorical(rng)
            self.tags[i] = program_tags(self.tags[i], int(self.categorical[i, 4]), rng)
        self.level_edges = tertile_edges(self.tags) if level_edges is None else np.asarray(level_edges)
        self.levels = to_levels(self.tags, self.level_edges)
        self._blades_photos: dict[int, np.ndarray] = {}

    def photo(self, face: int) -> np.ndarray:
        """The face as photographed: the ordinal rendering, then the categorical one (simulated faces only)."""
        if not self.simulated[face]:
            return super().photo(face)
        if face not in self._blades_photos:
            rng = np.random.default_rng([self.seed, _STREAM_CATEGORICAL_RENDER, face])
            self._blades_photos[face] = render_categorical(super().photo(face), self.categorical[face], rng)
        return self._blades_photos[face]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        image, _tags, label, kind_index = self.raw_item(index)
        face = self.item_kind(index)[0]
        return (to_tensor(image, self.input_size), torch.from_numpy(self.levels[face].copy()),
                torch.from_numpy(self.categorical[face].copy()), torch.tensor(label),
                torch.from_numpy(parts_targets(self.labels[kind_index])))


def _photo_exif(layout: Any) -> list[dict]:
    """Each face's whole Flickr EXIF record, read once per photo from the layout's JSON files. The layout's index
    keeps only the four ordinal strings (chapter 11), so the categorical fields are read here; a missing or
    unreadable file gives an empty record (the face then has no categorical labels, -1)."""
    records: dict[str, dict] = {}
    for face in layout.faces:
        if face.photo_id not in records:
            try:
                data = json.loads((Path(layout.exif_dir) / f"{face.photo_id}.json").read_text())
                records[face.photo_id] = data.get("EXIF", data) if isinstance(data, dict) else {}
            except (OSError, ValueError):
                records[face.photo_id] = {}
    return [{**records[face.photo_id], **face.exif} for face in layout.faces]


class FDFBladesDataset(torch.utils.data.Dataset):
    """Full-profile BLADES items from :class:`aigfd_lite.fdf.FDFLayout` (real Flickr EXIF, categorical included)."""

    def __init__(self, layout: Any, input_size: int = 224, level_edges: Optional[np.ndarray] = None) -> None:
        self.layout, self.input_size = layout, int(input_size)
        tags = np.stack([f.tags for f in layout.faces]) if len(layout.faces) else np.zeros((0, 4))
        self.level_edges = tertile_edges(tags) if level_edges is None else np.asarray(level_edges)
        self.levels = to_levels(tags, self.level_edges)
        self.categorical = np.stack([categorical_targets(parse_flickr_exif(record).categorical())
                                     for record in _photo_exif(layout)]) if len(layout.faces) else \
            np.zeros((0, 5), np.int64)

    def __len__(self) -> int:
        return len(self.layout)

    def set_epoch(self, epoch: int) -> None:
        self.layout.set_epoch(epoch)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        image, _tags, k = self.layout[index]
        kind = "real" if k == 0 else FDF_KIND_ORDER[int(k) - 1]
        return (to_tensor(np.asarray(image, dtype=np.uint8), self.input_size),
                torch.from_numpy(self.levels[index].copy()), torch.from_numpy(self.categorical[index].copy()),
                torch.tensor(int(k != 0)), torch.from_numpy(parts_targets(kind)))


def build_blades_dataset(cfg: Any, split: str = "train", schedule: str = "random", corpus: Any = None,
                         level_edges: Optional[np.ndarray] = None) -> torch.utils.data.Dataset:
    """BLADES' dataset of a profile/config for one split (lite corpus, or FDF when ``data_root`` is set)."""
    if getattr(cfg, "data_root", None) and corpus is None and split == "train":
        layout = FDFLayout(cfg.data_root, real_fraction=cfg.real_fraction, seed=cfg.seed)
        return FDFBladesDataset(layout, cfg.input_size, level_edges)
    if corpus is None:
        corpus = build_corpus(resolve(cfg.profile), progress=False)
    part = corpus.subset(split)
    tags, has = tags_of(part.table)
    images, landmarks, categorical = part.images, part.landmarks, corpus_categorical(part.table)
    cap = getattr(cfg, "max_train_items", None)
    if split == "train" and cap:
        images, landmarks, tags, has, categorical = (a[:cap] for a in (images, landmarks, tags, has, categorical))
    return BladesDataset(images, landmarks, tags, has, categorical, level_edges, seed=cfg.seed,
                         input_size=cfg.input_size, real_fraction=cfg.real_fraction,
                         simulate_camera=cfg.simulate_camera, symmetric=cfg.symmetric_resampling,
                         schedule=schedule,
                         variants_per_kind=getattr(cfg, "variants_per_kind", None) if split == "train" else None)
