"""The full profile's pretext items: FDF faces with real Flickr EXIF, manipulated on the fly (chapters 3-4).

:class:`FDFPretextDataset` reads the official layout through :class:`aigfd_lite.fdf.FDFLayout` and hands uint8
images resized to ``input_size`` to the DataLoader (decoding, cropping and manipulating all happen in its workers;
the training step normalises on the device). Two sources of manipulated faces (``manipulations``):

* ``"on-the-fly"`` (the default, the paper): each item is real with probability ``real_fraction``, else one of the
  four manipulations of :mod:`aigfd_lite.manipulate` (eye flip, horizontal and vertical mouth flips, piecewise-affine
  warp), made afresh from the face and its 68-point landmarks (:mod:`aigfd_lite.fdf.landmarks`) with the item's own
  generator, seeded by ``(seed, epoch, index)``; with ``symmetric`` (``cfg.symmetric_resampling``) real faces take
  the same 224 px round trip as manipulated ones. Faces without landmarks are left out and counted in ``skips``.
* ``"precomputed"`` (the published code): the released ``face_dataaug_neg/<name>_k.png`` files. They were made at
  224 px and saved back at 128 px while real faces were not resampled, which brings back the resampling shortcut
  chapter 3 removes; kept to compare with the code.

Nothing per face is held as a Python object: the index and the landmark table are numpy arrays that forked workers
share copy-on-write, and ``rows`` (the faces used) is one int64 array.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Optional

import numpy as np
import torch

from ..fdf import FDFLayout, N_MANIPULATED, load_or_compute
from ..manipulate import LABELS, make_training_image, sample_kind
from .batches import _STREAM_ITEM, item_uint8

MANIPULATION_SOURCES = ("on-the-fly", "precomputed")


class FDFPretextDataset(torch.utils.data.Dataset):
    """FDF faces as pretext items ``(image (S, S, 3) uint8, tags (4,) float32, label 0/1, kind)``.

    ``layout``: an :class:`aigfd_lite.fdf.FDFLayout` (or anything with its ``__getitem__``, ``load``, ``faces`` and
    ``index``); ``landmarks``: an :class:`aigfd_lite.fdf.landmarks.FaceLandmarks` of that layout (needed on the
    fly). Kinds follow :data:`aigfd_lite.manipulate.LABELS` on the fly; precomputed, kind ``k > 0`` is the file
    ``<name>_{k-1}.png`` (the release does not say which manipulation each file is).
    """

    def __init__(self, layout: Any, input_size: int = 224, *, manipulations: str = "on-the-fly",
                 landmarks: Any = None, real_fraction: float = 0.5, seed: int = 42, symmetric: bool = True) -> None:
        if manipulations not in MANIPULATION_SOURCES:
            raise ValueError(f"manipulations must be one of {MANIPULATION_SOURCES}, got {manipulations!r}")
        if not 0.0 <= real_fraction <= 1.0:
            raise ValueError(f"real_fraction must lie in [0, 1], got {real_fraction}")
        self.layout, self.input_size, self.manipulations = layout, int(input_size), manipulations
        self.real_fraction, self.seed, self.symmetric = float(real_fraction), int(seed), bool(symmetric)
        self.epoch = 0
        self.skips: Counter = Counter()
        self.landmarks = landmarks
        if manipulations == "on-the-fly":
            if landmarks is None:
                raise ValueError("on-the-fly manipulations need the faces' 68-point landmarks: "
                                 "aigfd_lite.fdf.landmarks.load_or_compute(layout, backend)")
            if len(landmarks) != len(layout):
                raise ValueError(f"{len(landmarks)} landmark rows for {len(layout)} faces: not this layout's table")
            found = landmarks.found
            self.rows = np.flatnonzero(found).astype(np.int64)
            self.skips.update(landmarks.skips)
            if not landmarks.complete:
                self.skips["landmarks_not_done"] += int(len(found) - int(landmarks.header.get("done", 0)))
            self.labels: Optional[tuple[str, ...]] = LABELS
            if not len(self.rows):
                raise ValueError(f"no face has landmarks (skipped: {dict(self.skips)})")
        else:
            self.rows = np.arange(len(layout), dtype=np.int64)
            self.labels = ("real", *(f"precomputed file {k}" for k in range(N_MANIPULATED)))
        # FDF's tags are the photos' real Flickr EXIF: no face carries simulated tags (chapter 4's captions)
        self.simulated = np.zeros(len(layout), dtype=bool)

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        """Items depend on (seed, epoch, index): the trainer sets the epoch (in each worker's copy)."""
        self.epoch = int(epoch)
        if hasattr(self.layout, "set_epoch"):
            self.layout.set_epoch(epoch)

    def faces_of_items(self) -> np.ndarray:
        """The layout row each item shows (the bootstrap of evaluate_pretext resamples faces)."""
        return self.rows.copy()

    def item_kind(self, index: int) -> tuple[int, str, np.random.Generator]:
        """The layout row, the kind's name and the item's random generator (after drawing the kind, as
        :meth:`raw_item` uses it) of item ``index`` in the current epoch; no image is read."""
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} out of range for {len(self)} items")
        row = int(self.rows[index])
        rng = np.random.default_rng([self.seed, _STREAM_ITEM, self.epoch, index])
        if self.manipulations == "precomputed":
            return row, self.labels[self.layout.manipulation_of(row)], rng
        return row, sample_kind(rng, self.real_fraction), rng

    def raw_item(self, index: int) -> tuple[np.ndarray, np.ndarray, int, int]:
        """Item ``index`` of the current epoch before resizing: (uint8 image, tags, label, kind index)."""
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} out of range for {len(self)} items")
        row = int(self.rows[index])
        if self.manipulations == "precomputed":
            image, tags, kind = self.layout[row]
            return np.asarray(image, dtype=np.uint8), np.asarray(tags, np.float32), int(kind != 0), int(kind)
        row, kind, rng = self.item_kind(index)
        image = self.layout.load(self.layout.faces[row], 0)
        points = self.landmarks.pixels(row, image.shape[1], image.shape[0])
        image = make_training_image(image, points, kind, rng, symmetric=self.symmetric)
        tags = np.asarray(self.layout.index.tags[row], dtype=np.float32)
        return image, tags, int(kind != "real"), LABELS.index(kind)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        image, tags, label, kind = self.raw_item(index)
        return item_uint8(image, self.input_size), torch.from_numpy(tags), torch.tensor(label), torch.tensor(kind)


def build_fdf_dataset(cfg: Any, progress: bool = True) -> FDFPretextDataset:
    """The full profile's training set from ``cfg.data_root`` (a profile or a TrainConfig): the FDF layout (its
    index built once), and on the fly (``cfg.manipulations``, default) the 68-point landmarks of
    ``cfg.landmark_backend`` (computed once, then read)."""
    mode = getattr(cfg, "manipulations", "on-the-fly")
    if mode not in MANIPULATION_SOURCES:
        raise ValueError(f"manipulations must be one of {MANIPULATION_SOURCES}, got {mode!r}")
    layout = FDFLayout(cfg.data_root, real_fraction=cfg.real_fraction, seed=cfg.seed,
                       require_manipulated=mode == "precomputed", progress=progress)
    if mode == "precomputed":
        return FDFPretextDataset(layout, cfg.input_size, manipulations=mode, seed=cfg.seed)

    backend = getattr(cfg, "landmark_backend", "fan")
    marks = load_or_compute(layout, backend, device=str(cfg.resolved_device()), progress=progress)
    return FDFPretextDataset(layout, cfg.input_size, manipulations=mode, landmarks=marks,
                             real_fraction=cfg.real_fraction, seed=cfg.seed, symmetric=cfg.symmetric_resampling)
