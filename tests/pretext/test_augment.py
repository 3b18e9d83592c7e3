"""Tests for aigfd_lite.pretext.augment: exact pixel moves, seeded by (seed, epoch, index), labels untouched."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from aigfd_lite.pretext.augment import AugmentedItems, augmented, flip_shift
from aigfd_lite.runtime.data_loader import EpochItems


def test_flip_shift_moves_pixels_without_resampling():
    image = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    flips, shifts = 0, set()
    for seed in range(200):
        out = flip_shift(image, np.random.default_rng(seed))
        assert out.shape == image.shape and out.dtype == np.uint8
        # every pixel of the output is a pixel of the input: nothing is interpolated
        assert np.isin(out.reshape(-1, 3).view("V3"), image.reshape(-1, 3).view("V3")).all()
        # recover the move: which mirror and shift reproduce the middle of the output
        for flipped in (False, True):
            src = image[:, ::-1] if flipped else image
            for dy in range(-2, 3):
                for dx in range(-3, 4):
                    if np.array_equal(out[8:24, 8:40], src[8 - dy:24 - dy, 8 - dx:40 - dx]):
                        flips += flipped
                        shifts.add((dy, dx))
    assert 70 < flips < 130  # a mirror half of the time
    assert {dy for dy, _ in shifts} == {-2, -1, 0, 1, 2} and {dx for _, dx in shifts} == {-3, -2, -1, 0, 1, 2, 3}


def test_flip_shift_fills_the_gap_with_the_edge():
    image = np.zeros((16, 16, 3), np.uint8)
    image[:, 0] = 200  # the left column
    rng = np.random.default_rng(0)
    for _ in range(50):
        out = flip_shift(image, rng)
        assert set(np.unique(out)) <= {0, 200}


class Faces(torch.utils.data.Dataset):
    """A stand-in pretext dataset: raw items and an epoch, like PretextDataset."""

    input_size = 16

    def __init__(self) -> None:
        self.images = np.random.default_rng(1).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
        self.epoch, self.warmed = 0, False

    def __len__(self) -> int:
        return 4

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def warm(self, progress: bool = False) -> None:
        self.warmed = True

    def raw_item(self, index):
        return self.images[index], np.full(4, index, np.float32), index % 2, index


def test_augmented_items_keep_labels_and_are_seeded_by_epoch_and_index():
    base = Faces()
    items = EpochItems(AugmentedItems(base, "flip-shift", seed=3))
    first = [items[k] for k in range(8)]  # epochs 0 and 1
    assert base.epoch == 1  # set_epoch reaches the wrapped dataset
    again = [items[k] for k in reversed(range(8))][::-1]  # another order (as after a resume): the same items
    for (a, *_), (b, *_) in zip(first, again):
        assert torch.equal(a, b)
    for k, (image, tags, label, kind) in enumerate(first):
        i = k % 4
        assert image.shape == (16, 16, 3) and image.dtype == torch.uint8
        assert torch.equal(tags, torch.full((4,), float(i))) and int(label) == i % 2 and int(kind) == i
    changed = [not torch.equal(first[i][0], first[i + 4][0]) for i in range(4)]
    assert any(changed)  # the same face differs between epochs


def test_augmented_passes_attributes_through_and_none_is_the_identity():
    base = Faces()
    wrapped = augmented(base, "flip-shift", 0)
    wrapped.warm()
    assert base.warmed and wrapped.input_size == 16 and len(wrapped) == 4
    assert augmented(base, None, 0) is base
    with pytest.raises(ValueError, match="unknown augmentation"):
        AugmentedItems(base, "rotate", 0)
