"""Batch construction of the pretext task (Sec. II-A): corpus faces -> (image tensor, 4 tags, manipulated?, kind).

Taught in chapter 4 (``book/04_pretraining.md``); the faces, manipulations and camera simulator come from chapter 3.

Each item is one face of the corpus. With probability ``real_fraction`` it stays real, else it gets one of the four
manipulations (:mod:`aigfd_lite.manipulate`). Manipulated images keep their source photo's tags and take part in the
ranking losses, as the published code does. Tags are the face's real EXIF where it has it; otherwise (lite profile,
``simulate_camera``) tags are drawn once per face from a seeded generator (:func:`aigfd_lite.camera.sample_tags`) and
the face is rendered through the camera simulator with them, so a face always has the same simulated settings and
the same rendering (like a photograph: taken once, manipulated afterwards). The per-item randomness (which
manipulation, its jitter) is seeded by ``(seed, epoch, index)``, so a resumed run sees exactly the same items. Images
are resized to ``input_size`` and normalised with CLIP's mean and std; there is no augmentation (as in the paper).
:func:`evaluate_pretext` and :func:`bootstrap_intervals` measure on held-out faces whether the tasks were learned.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .losses import pairwise_ranking_accuracy
from .models import CLIP_MEAN, CLIP_STD, TAGS, ExifManipNet

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
    ``(image (3, S, S) float, tags (4,) float32, label 0/1
    int64, kind index int64)``; kind indices follow :data:`aigfd_lite.manipulate.LABELS`.
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
            from . import manipulate as manip_module

            manipulate = manipulate or manip_module.make_training_image
            labels = labels or manip_module.LABELS
            sample_kind = sample_kind or manip_module.sample_kind
        if simulate_camera and (simulate is None or sample_tags is None):
            from . import camera

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
        from tqdm.auto import tqdm

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

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        image, tags, label, kind_index = self.raw_item(index)
        return (to_tensor(image, self.input_size), torch.from_numpy(tags), torch.tensor(label),
                torch.tensor(kind_index))


class FDFPretextDataset(torch.utils.data.Dataset):
    """The full profile's items: the official FDF layout (:class:`aigfd_lite.fdf.FDFLayout`) with real Flickr EXIF.

    The layout yields ``(image, tags (4,), label)`` with ``label`` 0 for a real face and ``k > 0`` for the k-th
    manipulation; the images are resized and normalised like :class:`PretextDataset`'s.
    """

    def __init__(self, layout: Any, input_size: int = 224) -> None:
        self.layout, self.input_size = layout, int(input_size)

    def __len__(self) -> int:
        return len(self.layout)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.layout, "set_epoch"):
            self.layout.set_epoch(epoch)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        image, tags, label = self.layout[index]
        kind = int(label)
        return (to_tensor(np.asarray(image, dtype=np.uint8), self.input_size),
                torch.as_tensor(np.asarray(tags, dtype=np.float32)), torch.tensor(int(kind != 0)),
                torch.tensor(kind))


def build_pretext_dataset(cfg: Any, split: str = "train", schedule: str = "random",
                          corpus: Any = None) -> torch.utils.data.Dataset:
    """The pretext dataset of a profile (or a :class:`aigfd_lite.train.TrainConfig`) for one corpus split.

    Lite: the face corpus of chapter 3 (``build_corpus``), capped at ``max_train_items`` faces for training. Full
    (``data_root`` set and the official layout present): FDF through :class:`FDFPretextDataset`.
    """
    data_root = getattr(cfg, "data_root", None)
    if data_root and corpus is None and split == "train":
        from .fdf import FDFLayout

        layout = FDFLayout(data_root, real_fraction=cfg.real_fraction, seed=cfg.seed)
        return FDFPretextDataset(layout, input_size=cfg.input_size)
    if corpus is None:
        from .faces import build_corpus
        from .profiles import resolve

        profile = cfg if hasattr(cfg, "cache_path") else resolve(cfg.profile)
        corpus = build_corpus(profile)
    part = corpus.subset(split)
    images, landmarks = part.images, part.landmarks
    tags, has = tags_of(part.table)
    cap = getattr(cfg, "max_train_items", None)
    if split == "train" and cap:
        images, landmarks, tags, has = images[:cap], landmarks[:cap], tags[:cap], has[:cap]
    return PretextDataset(images, landmarks, tags, has, seed=cfg.seed, input_size=cfg.input_size,
                          real_fraction=cfg.real_fraction, simulate_camera=cfg.simulate_camera,
                          symmetric=cfg.symmetric_resampling, schedule=schedule,
                          variants_per_kind=getattr(cfg, "variants_per_kind", None) if split == "train" else None)


@torch.no_grad()
def evaluate_pretext(model: ExifManipNet, dataset: torch.utils.data.Dataset, batch_size: int = 64,
                     device: str = "cpu", progress: bool = True) -> dict[str, Any]:
    """Held-out evidence of the pretext tasks (chance is 0.5 for every number).

    Pairwise ranking accuracy per tag over all untied, tagged pairs of the dataset's real items (all items if it has
    none: with ``schedule="every_kind"`` a face's five versions share its tags); manipulation detection at logit
    0 as a balanced accuracy (mean of the accuracy on real items and on manipulated items, so the class mix of the
    dataset does not matter), its ROC AUC, and the accuracy per kind.
    """
    from sklearn.metrics import roc_auc_score
    from tqdm.auto import tqdm

    model.eval().to(device)
    outs: dict[str, list[torch.Tensor]] = {k: [] for k in (*TAGS, "manipulation", "tags", "labels", "kinds")}
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for images, tags, labels, kinds in tqdm(loader, desc="held-out", disable=not progress):
        out = model(images.to(device))
        for k in (*TAGS, "manipulation"):
            outs[k].append(out[k].float().cpu())
        outs["tags"].append(tags)
        outs["labels"].append(labels)
        outs["kinds"].append(kinds)
    cat = {k: torch.cat(v) for k, v in outs.items()}
    result: dict[str, Any] = {}
    real = cat["labels"] == 0 if (cat["labels"] == 0).any() else torch.ones_like(cat["labels"], dtype=torch.bool)
    for k, tag in enumerate(TAGS):
        accuracy, pairs = pairwise_ranking_accuracy(cat[tag][real], cat["tags"][real, k].float())
        result[f"ranking_accuracy_{tag}"], result[f"ranking_pairs_{tag}"] = accuracy, pairs
    labels = cat["labels"].numpy()
    correct = ((cat["manipulation"] > 0).long() == cat["labels"]).numpy()
    per_class = [correct[labels == c].mean() for c in (0, 1) if (labels == c).any()]
    result["manipulation_balanced_accuracy"] = float(np.mean(per_class))
    both = len(per_class) == 2
    result["manipulation_auc"] = float(roc_auc_score(labels, cat["manipulation"].numpy())) if both else float("nan")
    result["n_items"] = len(labels)
    names = getattr(dataset, "labels", None)
    kinds = cat["kinds"].numpy()
    for kind in np.unique(kinds):
        name = names[kind] if names else str(kind)
        result[f"manipulation_accuracy_{name}"] = float(correct[kinds == kind].mean())
    groups = [dataset.item_kind(i)[0] for i in range(len(dataset))] if hasattr(dataset, "item_kind") else None
    result["faces"] = np.asarray(groups if groups is not None else np.arange(len(labels)))
    result["scores"] = {k: cat[k].numpy() for k in (*TAGS, "manipulation")}
    result["tags"], result["labels"], result["kinds"] = cat["tags"].numpy(), cat["labels"].numpy(), cat["kinds"].numpy()
    return result


def bootstrap_intervals(result: dict[str, Any], n_resamples: int = 300, level: float = 0.95,
                        seed: int = 0) -> pd.DataFrame:
    """Percentile bootstrap intervals of :func:`evaluate_pretext`'s accuracies, resampling *faces* (a face's items
    and pairs move together, since they are not independent). Columns: metric, value, low, high."""
    faces = result["faces"]
    unique = np.unique(faces)
    members = {f: np.flatnonzero(faces == f) for f in unique}
    rng = np.random.default_rng(seed)
    names = [f"ranking_accuracy_{t}" for t in TAGS] + ["manipulation_balanced_accuracy"]
    draws: dict[str, list[float]] = {n: [] for n in names}
    labels, scores, tags = result["labels"], result["scores"], result["tags"]
    for _ in range(n_resamples):
        idx = np.concatenate([members[f] for f in rng.choice(unique, len(unique), replace=True)])
        real = idx[labels[idx] == 0] if (labels[idx] == 0).any() else idx
        for k, tag in enumerate(TAGS):
            accuracy, _ = pairwise_ranking_accuracy(torch.from_numpy(scores[tag][real]),
                                                    torch.from_numpy(tags[real, k].astype(np.float64)))
            draws[f"ranking_accuracy_{tag}"].append(accuracy)
        correct = (scores["manipulation"][idx] > 0).astype(int) == labels[idx]
        per_class = [correct[labels[idx] == c].mean() for c in (0, 1) if (labels[idx] == c).any()]
        draws["manipulation_balanced_accuracy"].append(float(np.mean(per_class)))
    tail = (1 - level) / 2 * 100
    rows = [{"metric": n, "value": result[n], "low": np.nanpercentile(draws[n], tail),
             "high": np.nanpercentile(draws[n], 100 - tail)} for n in names]
    return pd.DataFrame(rows)


def saturation_diagnostic(logits: np.ndarray, labels: np.ndarray, confident: float = 0.95) -> pd.DataFrame:
    """How much each manipulation loss pushes the items it gets wrong: fidelity (Eq. 5) against BCE.

    Per group of items (all, correct, wrong, and wrong with a saturated sigmoid, i.e. ``q_hat`` beyond
    ``confident`` on the wrong side), the count and the mean ``|dL/d logit|`` one item receives from each loss. For a
    label 1, the fidelity gradient is ``sqrt(q)(1 - q) / 2`` (up to the epsilon), which vanishes as ``q -> 0``, while
    BCE's is ``1 - q`` (-> 1): a confidently wrong item is hardly corrected by the fidelity loss (chapter 4).
    """
    from .losses import manipulation_loss

    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    y = torch.as_tensor(np.asarray(labels, dtype=np.float64))
    if z.shape != y.shape or z.ndim != 1:
        raise ValueError(f"logits {tuple(z.shape)} and labels {tuple(y.shape)} must be two equal 1-d arrays")
    grads = {}
    for form in ("fidelity", "bce"):
        zz = z.clone().requires_grad_(True)
        (manipulation_loss(zz, y, form=form) * len(zz)).backward()  # the sum: one item's own gradient each
        grads[form] = zz.grad.abs().numpy()
    q = torch.sigmoid(z).numpy()
    wrong = (q > 0.5) != (y.numpy() == 1)
    saturated = np.maximum(q, 1 - q) > confident
    groups = {"all": np.ones_like(wrong), "correct": ~wrong, "wrong": wrong, "wrong, saturated": wrong & saturated}
    rows = [{"items": name, "n": int(mask.sum()),
             "mean |dL/dz| fidelity": float(grads["fidelity"][mask].mean()) if mask.any() else float("nan"),
             "mean |dL/dz| BCE": float(grads["bce"][mask].mean()) if mask.any() else float("nan")}
            for name, mask in groups.items()]
    return pd.DataFrame(rows)


def decode_rate_per_core(images: np.ndarray, input_size: int = 224) -> float:
    """Items per second one CPU core prepares as the full profile's loader does: PNG decode, resize, normalise.

    The images are PNG-encoded first (FDF's files are PNGs; encoding is not timed). Chapter 4's GPU estimate.
    """
    import io
    import time

    from PIL import Image

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
