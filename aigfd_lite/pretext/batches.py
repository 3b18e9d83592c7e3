"""Batch construction of the pretext task (Sec. II-A): corpus faces -> (image tensor, 4 tags, manipulated?, kind).

Taught in chapter 4 (``book/04_pretraining.md``); the faces, manipulations and camera simulator come from chapter 3.

Each item is one face of the corpus. With probability ``real_fraction`` it stays real, else it gets one of the four
manipulations (:mod:`aigfd_lite.manipulate`). Manipulated images keep their source photo's tags and take part in the
ranking losses, as the published code does. Tags are the face's real EXIF where it has it; otherwise (lite profile,
``simulate_camera``) tags are drawn once per face from a seeded generator (:func:`aigfd_lite.camera.sample_tags`) and
the face is rendered through the camera simulator with them, so a face always has the same simulated settings and
the same rendering (like a photograph: taken once, manipulated afterwards). The per-item randomness (which
manipulation, its jitter) is seeded by ``(seed, epoch, index)``, so a resumed run sees exactly the same items. Items
are uint8 images resized to ``input_size`` (in the DataLoader's workers); the training step normalises them with
CLIP's mean and std on the device (:func:`aigfd_lite.models.prepare_batch`), the same for lite and full. There is no
augmentation (as in the paper).

The module is split at its seams: the lite dataset here, the full profile's FDF dataset with on-the-fly
manipulations in :mod:`aigfd_lite.pretext.fdf_items` (68-point landmarks from :mod:`aigfd_lite.fdf.landmarks`), and the
held-out evaluation (:func:`evaluate_pretext`, :func:`bootstrap_intervals`, sampled pairs at scale) in
:mod:`aigfd_lite.pretext.evaluation`; every public name is importable from :mod:`aigfd_lite.pretext`.
"""
from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from .. import manipulate as manip_module
from ..camera import simulator as camera
from ..models import CLIP_MEAN, CLIP_STD, TAGS
from ..images import resample

#: Random streams: one per purpose, so drawing tags never shifts the manipulation draws (and vice versa).
_STREAM_TAGS, _STREAM_CAMERA, _STREAM_ITEM, _STREAM_POOL = 0, 1, 2, 3


def to_tensor(image: np.ndarray, input_size: int) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, input_size, input_size): antialiased bilinear resize, CLIP normalisation."""
    x = torch.from_numpy(np.require(image, requirements=("C", "W"))).permute(2, 0, 1).float().div_(255.0)
    if x.shape[-2:] != (input_size, input_size):
        x = F.interpolate(x[None], size=(input_size, input_size), mode="bilinear", antialias=True,
                          align_corners=False)[0]
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    return (x - mean) / std


def item_uint8(image: np.ndarray, input_size: int) -> torch.Tensor:
    """uint8 (H, W, 3) -> uint8 (input_size, input_size, 3) tensor: what a DataLoader worker hands over (a quarter
    of float32's bytes through the loader's queues and to the GPU); antialiased bilinear, rounded (unchanged when
    the image has that size already). :func:`aigfd_lite.models.network.normalise` of it equals :func:`to_tensor` up to
    that rounding, exactly when no resize is needed."""
    image = np.require(image, dtype=np.uint8, requirements=("C",))
    return torch.from_numpy(resample(image[None], int(input_size))[0])


def tags_of(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The (N, 4) real-EXIF tag array of a corpus table (NaN where missing) and the has-real-EXIF mask."""
    missing = [t for t in TAGS if t not in table.columns]
    if missing:
        raise ValueError(f"the corpus table lacks tag column(s) {missing}")
    tags = table[list(TAGS)].to_numpy(dtype=np.float64)
    has = table["has_camera_exif"].to_numpy(dtype=bool) if "has_camera_exif" in table else ~np.isnan(tags).all(1)
    return tags, has & ~np.isnan(tags).all(1)


class PretextDataset(torch.utils.data.Dataset):
    """Training (or held-out) items of the pretext task built from faces with 68-point landmarks.

    ``images`` uint8 (N, H, W, 3); ``landmarks`` (N, 68, 2); ``tags`` (N, 4) real EXIF in :data:`TAGS` order with
    NaN where missing; ``has_exif`` (N,) marks faces whose tags are real. Faces without real EXIF get simulated tags
    and a camera rendering when ``simulate_camera`` (else their tags stay NaN and they only join the manipulation
    task). ``schedule="random"`` draws each item's kind (``real_fraction`` real, the rest spread over the four
    manipulations); ``"every_kind"`` (evaluation) has ``5 N`` items: each face once real and once with each
    manipulation (score it with a balanced accuracy: real and manipulated items count half each). Items:
    ``(image (S, S, 3) uint8, tags (4,) float32, label 0/1 int64, kind index int64)``; kind indices follow
    :data:`aigfd_lite.manipulate.LABELS`; the training step normalises the images on its device.
    ``variants_per_kind=None`` manipulates every item afresh (its jitter seeded by (seed, epoch, index));
    ``k`` draws each training item from a pool of ``k`` seeded manipulations per face and kind (see :meth:`variant`),
    which makes the data pipeline cheap enough for 2 CPU cores.

    ``manipulate``, ``simulate`` and ``sample_tags`` default to the package's functions; tests pass stand-ins.
    """

    def __init__(self, images: np.ndarray, landmarks: np.ndarray, tags: np.ndarray, has_exif: np.ndarray, *,
                 seed: int = 42, input_size: int = 224, real_fraction: float = 0.5, simulate_camera: bool = True,
                 symmetric: bool = True, schedule: str = "random", variants_per_kind: int | None = None,
                 labels: Sequence[str] | None = None,
                 manipulate: Callable[..., np.ndarray] | None = None,
                 simulate: Callable[..., np.ndarray] | None = None,
                 sample_tags: Callable[..., np.ndarray] | None = None,
                 sample_kind: Callable[..., Any] | None = None) -> None:
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
        n = len(images)
        if landmarks.shape != (n, 68, 2) or tags.shape != (n, 4) or len(has_exif) != n:
            raise ValueError(f"landmarks {landmarks.shape}, tags {tags.shape} and has_exif ({len(has_exif)}) do "
                             f"not match {n} images ((N, 68, 2), (N, 4), (N,) expected)")
        if schedule not in ("random", "every_kind"):
            raise ValueError(f"schedule must be 'random' or 'every_kind', got {schedule!r}")
        if not 0.0 <= real_fraction <= 1.0:
            raise ValueError(f"real_fraction must lie in [0, 1], got {real_fraction}")
        if variants_per_kind is not None and variants_per_kind < 1:
            raise ValueError(f"variants_per_kind must be None (fresh every item) or >= 1, got {variants_per_kind}")
        if manipulate is None or labels is None or sample_kind is None:
            manipulate = manipulate or manip_module.make_training_image
            labels = labels or manip_module.LABELS
            sample_kind = sample_kind or manip_module.sample_kind
        if simulate_camera and (simulate is None or sample_tags is None):
            simulate = simulate or camera.simulate
            sample_tags = sample_tags or camera.sample_tags
        self.images, self.landmarks = images, np.asarray(landmarks, dtype=np.float32)
        self.seed, self.input_size, self.real_fraction = int(seed), int(input_size), float(real_fraction)
        self.symmetric, self.schedule, self.simulate_camera = bool(symmetric), schedule, bool(simulate_camera)
        self.labels = tuple(labels)
        self.real_label = self.labels[0]
        self._manipulate, self._simulate, self._sample_kind = manipulate, simulate, sample_kind
        self.epoch = 0
        self.has_exif = np.asarray(has_exif, dtype=bool)
        self.tags = np.where(self.has_exif[:, None], tags, np.nan).astype(np.float32)
        # Which faces carry simulated tags (and are rendered through the camera simulator).
        self.simulated = ~self.has_exif if simulate_camera else np.zeros(n, dtype=bool)
        for i in np.flatnonzero(self.simulated):
            rng = np.random.default_rng([self.seed, _STREAM_TAGS, int(i)])
            self.tags[i] = np.asarray(sample_tags(rng, 1), dtype=np.float32).reshape(4)
        self._rendered: dict[int, np.ndarray] = {}  # per-process cache: each face is "photographed" once
        self.variants_per_kind = variants_per_kind
        self._pool: dict[tuple[int, int, int], np.ndarray] = {}  # (face, kind, variant) -> manipulated image

    def __len__(self) -> int:
        return len(self.labels) * len(self.images) if self.schedule == "every_kind" else len(self.images)

    def set_epoch(self, epoch: int) -> None:
        """Items depend on (seed, epoch, index): the trainer calls this before every epoch."""
        self.epoch = int(epoch)

    def photo(self, face: int) -> np.ndarray:
        """The face as photographed: the original, or its camera rendering with the face's simulated tags."""
        if not self.simulated[face]:
            return self.images[face]
        if face not in self._rendered:
            rng = np.random.default_rng([self.seed, _STREAM_CAMERA, face])
            rendered = self._simulate(self.images[face], self.tags[face], rng)
            self._rendered[face] = np.asarray(rendered, dtype=np.uint8)
        return self._rendered[face]

    def item_kind(self, index: int) -> tuple[int, str, np.random.Generator]:
        """The face, the kind name and the item's random generator of item ``index`` in the current epoch."""
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} out of range for {len(self)} items")
        if self.schedule == "every_kind":
            face, k = divmod(index, len(self.labels))
            return face, self.labels[k], np.random.default_rng([self.seed, _STREAM_ITEM, 0, index])
        rng = np.random.default_rng([self.seed, _STREAM_ITEM, self.epoch, index])
        kind = self._sample_kind(rng, self.real_fraction)
        if not isinstance(kind, str):
            kind = self.labels[int(kind)]
        return index, kind, rng

    def variant(self, face: int, kind_index: int, variant: int) -> np.ndarray:
        """One pooled manipulation of a face, seeded by (seed, face, kind, variant) alone: the same in every epoch,
        worker and resumed run. The pool is the published code's approach (one precomputed image per manipulation
        and face), with ``variants_per_kind`` of them; real faces have a single, deterministic version."""
        key = (face, kind_index, variant if kind_index else 0)
        if key not in self._pool:
            rng = np.random.default_rng([self.seed, _STREAM_POOL, *key])
            image = self._manipulate(self.photo(face), self.landmarks[face], self.labels[kind_index], rng,
                                     symmetric=self.symmetric)
            self._pool[key] = np.asarray(image, dtype=np.uint8)
        return self._pool[key]

    def warm(self, progress: bool = False) -> None:
        """Render every face's photo (and fill the manipulation pool) now, e.g. before DataLoader workers fork."""
        for face in tqdm(range(len(self.images)), desc="pretext cache", disable=not progress, leave=False,
                         mininterval=5):
            self.photo(face)
            if self.variants_per_kind is not None:
                for kind_index in range(len(self.labels)):
                    for v in range(self.variants_per_kind if kind_index else 1):
                        self.variant(face, kind_index, v)

    def raw_item(self, index: int) -> tuple[np.ndarray, np.ndarray, int, int]:
        """Item ``index`` before resizing and normalisation: (uint8 image, tags, label, kind index)."""
        face, kind, rng = self.item_kind(index)
        kind_index = self.labels.index(kind)
        if self.variants_per_kind is not None and self.schedule == "random":
            image = self.variant(face, kind_index, int(rng.integers(self.variants_per_kind)))
        else:
            image = self._manipulate(self.photo(face), self.landmarks[face], kind, rng, symmetric=self.symmetric)
        return np.asarray(image, dtype=np.uint8), self.tags[face].copy(), int(kind_index != 0), kind_index

    def faces_of_items(self) -> np.ndarray:
        """The face each item shows (the bootstrap of :func:`bootstrap_intervals` resamples faces)."""
        items = np.arange(len(self))
        return items // len(self.labels) if self.schedule == "every_kind" else items

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        image, tags, label, kind_index = self.raw_item(index)
        return (item_uint8(image, self.input_size), torch.from_numpy(tags), torch.tensor(label),
                torch.tensor(kind_index))


def decode_rate_per_core(images: np.ndarray, input_size: int = 224) -> float:
    """Items per second one CPU core prepares as the full profile's loader does: PNG decode, resize, normalise.

    The images are PNG-encoded first (FDF's files are PNGs; encoding is not timed). Chapter 4's GPU estimate.
    """
    if len(images) == 0:
        raise ValueError("need at least one image to time")
    blobs = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
        blobs.append(buffer.getvalue())
    tick = time.perf_counter()
    for blob in blobs:
        to_tensor(np.asarray(Image.open(io.BytesIO(blob)).convert("RGB")), input_size)
    return len(blobs) / (time.perf_counter() - tick)


# The evaluation half of the pretext task, importable from here as before the split.
from .evaluation import (MAX_PAIRS, bootstrap_intervals, evaluate_pretext, ranking_accuracy,  # noqa: E402,F401
                           saturation_diagnostic)
from ..runtime import progress_bar as tqdm
