"""Label-preserving augmentation of pretext training items (chapter 4; a lite setting, off in the paper's profile).

The paper trains on 200,000 FDF faces without augmentation, seeing each face a few times. Lite trains on ~130-180
faces for 40 epochs, and every real face is the same array of pixels in every epoch while each manipulated face comes
in several versions; a network can then learn *these* real faces by heart and call any face it has not seen
"manipulated". ``augment = "flip-shift"`` makes the real faces (and, alike, the manipulated ones) differ between
epochs: a left-right mirror with probability 1/2 and an integer shift of up to ``max_shift`` of the side, edges
repeated. Both are exact pixel moves (no resampling, so no smoothing for a network to pick up, chapter 3), applied
to every training item whatever its label; held-out evaluation never augments.

    AugmentedItems(dataset, "flip-shift", seed)[i]  ->  dataset's item i, mirrored and shifted (seeded by
                                                         (seed, epoch, i): the same after a resume, in any worker)
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from .batches import item_uint8

#: The choices of ``TrainConfig.augment``: None (the paper: items as they are) or "flip-shift".
AUGMENTATIONS: tuple[Optional[str], ...] = (None, "flip-shift")
_STREAM_AUGMENT = 7  # a random stream of its own (see aigfd_lite.pretext's _STREAM_* numbers)


def flip_shift(image: np.ndarray, rng: np.random.Generator, max_shift: float = 1 / 16) -> np.ndarray:
    """Mirror a uint8 (H, W, 3) image left-right with probability 1/2, then shift it by whole pixels, up to
    ``max_shift`` of its height (rows) and width (columns) each way, repeating the edge pixels into the gap.

    The shape, the dtype and every pixel value are kept (a pixel either moves or copies its edge neighbour)."""
    if image.ndim != 3:
        raise ValueError(f"flip_shift expects an (H, W, C) image, got shape {image.shape}")
    h, w = image.shape[:2]
    if rng.random() < 0.5:
        image = image[:, ::-1]
    dy, dx = (int(rng.integers(-int(max_shift * n), int(max_shift * n) + 1)) for n in (h, w))
    padded = np.pad(image, ((abs(dy), abs(dy)), (abs(dx), abs(dx)), (0, 0)), mode="edge")
    top, left = abs(dy) - dy, abs(dx) - dx
    return np.ascontiguousarray(padded[top:top + h, left:left + w])


class AugmentedItems(torch.utils.data.Dataset):
    """A pretext dataset (:class:`~aigfd_lite.pretext.PretextDataset` or
    :class:`~aigfd_lite.pretext.fdf_items.FDFPretextDataset`) whose items pass through :func:`flip_shift` before they are
    resized; every other attribute is the wrapped dataset's."""

    def __init__(self, dataset: Any, augment: str, seed: int) -> None:
        if augment not in AUGMENTATIONS or augment is None:
            raise ValueError(f"unknown augmentation {augment!r}; choose one of {AUGMENTATIONS}")
        self.dataset, self.augment, self.seed, self.epoch = dataset, augment, int(seed), 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (e.g. while unpickling in a worker): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        image, tags, label, kind = self.dataset.raw_item(index)
        image = flip_shift(image, np.random.default_rng([self.seed, _STREAM_AUGMENT, self.epoch, int(index)]))
        return (item_uint8(image, self.dataset.input_size), torch.as_tensor(np.asarray(tags, np.float32)),
                torch.tensor(label), torch.tensor(kind))


def augmented(dataset: Any, augment: Optional[str], seed: int) -> Any:
    """``dataset`` itself when ``augment`` is None, else wrapped in :class:`AugmentedItems`."""
    return dataset if augment is None else AugmentedItems(dataset, augment, seed)
