"""Tests of aigfd_lite.pretext: the batch construction of the pretext task (chapter 4)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from aigfd_lite.models.network import CLIP_MEAN, CLIP_STD
from aigfd_lite.pretext.batches import PretextDataset, tags_of, to_tensor

LABELS = ("real", "eye_flip", "mouth_flip_h", "mouth_flip_v", "warp")


def fake_manipulate(image, landmarks, kind, rng, symmetric=True):
    """Stand-in: marks the kind in pixel (0, 0) and one rng draw in pixel (0, 1)."""
    out = image.copy()
    out[0, 0, 0] = LABELS.index(kind) * 10
    out[0, 1, 0] = int(rng.integers(0, 256))
    return out


def fake_simulate(image, tags, rng):
    out = image.copy()
    out[..., 2] = min(255, int(tags[3] // 10))  # "ISO" written into the blue channel
    return out


def fake_sample_tags(rng, n):
    return rng.uniform([1.4, 1e-3, 20, 100], [16, 1 / 30, 200, 3200], size=(n, 4))


def make_dataset(n=12, **kw):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
    landmarks = rng.uniform(2, 14, (n, 68, 2)).astype(np.float32)
    tags = np.full((n, 4), np.nan)
    tags[:3] = [[2.8, 1 / 250, 50, 400], [5.6, 1 / 60, 85, 100], [4.0, np.nan, 35, 800]]
    has = np.zeros(n, bool)
    has[:3] = True
    options = dict(seed=7, input_size=8, labels=LABELS, manipulate=fake_manipulate, simulate=fake_simulate,
                   sample_tags=fake_sample_tags, sample_kind=lambda r, f: "real" if r.random() < f else
                   LABELS[1 + int(r.integers(4))])
    options.update(kw)
    return PretextDataset(images, landmarks, tags, has, **options)


def test_items_shapes_types_and_normalisation():
    ds = make_dataset()
    x, tags, label, kind = ds[0]
    assert x.shape == (8, 8, 3) and x.dtype == torch.uint8  # uint8 to the loader, normalised on the device
    assert tags.shape == (4,) and tags.dtype == torch.float32
    assert label.dtype == torch.int64 and kind.dtype == torch.int64
    assert int(label) == int(int(kind) != 0)
    white = to_tensor(np.full((4, 4, 3), 255, np.uint8), 4)
    assert white[1, 0, 0].item() == pytest.approx((1 - CLIP_MEAN[1]) / CLIP_STD[1], rel=1e-6)


def test_device_normalisation_equals_the_in_process_tensor():
    from aigfd_lite.models.network import prepare_batch
    from aigfd_lite.pretext.batches import item_uint8

    ds = make_dataset(input_size=16)  # the faces' own size: no resize, so exactly equal
    raw = [ds.raw_item(i)[0] for i in range(4)]
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])[0]
    on_device = prepare_batch(batch, torch.device("cpu"), 16, channels_last=False)
    assert torch.equal(on_device, torch.stack([to_tensor(im, 16) for im in raw]))
    from aigfd_lite.models.network import ExifManipNet

    net = ExifManipNet(feature_dim=4, backbone=torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(768, 4)))
    with torch.no_grad():  # a dataset's uint8 batch can also go to the model directly (chapter 4 does)
        assert torch.equal(net(batch)["manipulation"], net(on_device)["manipulation"])
    small = prepare_batch(torch.stack([item_uint8(im, 8) for im in raw]), torch.device("cpu"), 8)
    assert (small - torch.stack([to_tensor(im, 8) for im in raw])).abs().max() < 0.5 / 255 / min(CLIP_STD) + 1e-6


def test_real_exif_kept_and_missing_tags_simulated_per_face():
    ds = make_dataset()
    np.testing.assert_allclose(ds.tags[0], [2.8, 1 / 250, 50, 400], rtol=1e-6)
    assert np.isnan(ds.tags[2, 1])  # a real but incomplete EXIF is not filled in with simulated values
    assert list(ds.simulated[:4]) == [False, False, False, True]
    assert not np.isnan(ds.tags[3:]).any()
    # the same face always gets the same simulated settings, for any epoch and any new dataset object
    again = make_dataset()
    np.testing.assert_array_equal(ds.tags, again.tags)
    assert not np.allclose(ds.tags[3], ds.tags[4])
    # the simulated face is rendered with its tags; a real-EXIF face is not rendered
    raw, _, _, _ = ds.raw_item(5)
    assert (raw[..., 2].ravel()[2:] == min(255, int(ds.tags[5, 3] // 10))).all()
    assert np.array_equal(ds.photo(0), ds.images[0])
    # without the simulator, faces without EXIF keep NaN tags (they only join the manipulation task)
    plain = make_dataset(simulate_camera=False)
    assert np.isnan(plain.tags[3:]).all() and not plain.simulated.any()


def test_items_are_seeded_by_seed_epoch_index():
    ds = make_dataset(n=64)
    first = [ds.raw_item(i)[0] for i in range(64)]
    assert all(np.array_equal(a, ds.raw_item(i)[0]) for i, a in enumerate(first))  # repeatable
    ds.set_epoch(1)
    second = [ds.raw_item(i)[0] for i in range(64)]
    assert sum(not np.array_equal(a, b) for a, b in zip(first, second)) > 32  # a new epoch draws anew
    other_seed = make_dataset(n=64, seed=8)
    assert sum(not np.array_equal(a, other_seed.raw_item(i)[0]) for i, a in enumerate(first)) > 32


def test_kind_frequencies_follow_real_fraction():
    ds = make_dataset(n=2000)
    kinds = np.array([ds.item_kind(i)[1] for i in range(len(ds))])
    assert abs((kinds == "real").mean() - 0.5) < 0.04
    for name in LABELS[1:]:
        assert abs((kinds == name).mean() - 0.125) < 0.03
    all_real = make_dataset(n=50, real_fraction=1.0)
    assert all(all_real.item_kind(i)[1] == "real" for i in range(50))


def test_every_kind_schedule_for_evaluation():
    ds = make_dataset(n=3, schedule="every_kind")
    assert len(ds) == 15
    assert [int(ds[i][3]) for i in range(15)] == [0, 1, 2, 3, 4] * 3
    assert [int(ds[i][2]) for i in range(5)] == [0, 1, 1, 1, 1]
    assert all(ds.item_kind(i)[0] == i // 5 for i in range(15))


def test_workers_give_the_same_batches_as_the_main_process():
    ds = make_dataset(n=16)
    ds.set_epoch(3)
    a = list(torch.utils.data.DataLoader(ds, batch_size=4, num_workers=0))
    b = list(torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2))
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            torch.testing.assert_close(u, v, equal_nan=True)


def test_bad_inputs():
    with pytest.raises(ValueError, match="uint8"):
        make_dataset().__class__(np.zeros((2, 8, 8, 3), np.float32), np.zeros((2, 68, 2)), np.zeros((2, 4)),
                                 np.zeros(2, bool), labels=LABELS, manipulate=fake_manipulate,
                                 sample_kind=lambda r, f: "real", simulate_camera=False)
    with pytest.raises(ValueError, match="do not match"):
        PretextDataset(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((3, 68, 2)), np.zeros((2, 4)), np.zeros(2, bool),
                       labels=LABELS, manipulate=fake_manipulate, sample_kind=lambda r, f: "real",
                       simulate_camera=False)
    with pytest.raises(ValueError, match="schedule"):
        make_dataset(schedule="shuffled")
    with pytest.raises(ValueError, match="real_fraction"):
        make_dataset(real_fraction=1.5)
    with pytest.raises(IndexError):
        make_dataset(n=4)[4]


def test_tags_of_corpus_table():
    table = pd.DataFrame({"aperture": [2.8, np.nan], "exposure_time": [0.01, np.nan], "focal_length": [50, np.nan],
                          "iso": [100, np.nan], "has_camera_exif": [True, False]})
    tags, has = tags_of(table)
    assert tags.shape == (2, 4) and list(has) == [True, False]
    with pytest.raises(ValueError, match="lacks"):
        tags_of(table.drop(columns="iso"))


def test_with_the_real_manipulations_and_camera():
    """The package's own manipulate and camera modules plug in (skipped only while they are missing)."""
    manipulate = pytest.importorskip("aigfd_lite.manipulate")
    pytest.importorskip("aigfd_lite.camera")
    rng = np.random.default_rng(1)
    n = 4
    images = rng.integers(60, 200, (n, 128, 128, 3), dtype=np.uint8)
    # a plausible frontal layout of the 68 points: eyes 36-47 at y=50, mouth 48-67 at y=90
    base = np.stack([np.linspace(30, 98, 68), np.full(68, 70.0)], 1)
    base[36:48, 1], base[48:68, 1] = 50, 90
    base[36:42, 0], base[42:48, 0] = np.linspace(35, 55, 6), np.linspace(73, 93, 6)
    base[48:68, 0] = np.linspace(45, 83, 20)
    landmarks = np.repeat(base[None], n, 0).astype(np.float32)
    ds = PretextDataset(images, landmarks, np.full((n, 4), np.nan), np.zeros(n, bool), input_size=32,
                        schedule="every_kind")
    assert ds.labels == manipulate.LABELS
    for i in range(len(ds)):
        x, tags, label, kind = ds[i]
        assert x.shape == (32, 32, 3) and x.dtype == torch.uint8 and torch.isfinite(tags).all()


def test_fdf_adapter_resizes_and_labels():
    from aigfd_lite.pretext.fdf_items import FDFPretextDataset

    class Layout:
        epoch = 0

        def __len__(self):
            return 3

        def set_epoch(self, epoch):
            self.epoch = epoch

        def __getitem__(self, i):
            return np.full((100 + i, 90, 3), 128, np.uint8), np.array([2.8, 0.004, 50, np.nan]), i

    ds = FDFPretextDataset(Layout(), input_size=32, manipulations="precomputed")
    ds.set_epoch(4)
    assert ds.layout.epoch == 4
    x, tags, label, kind = ds[2]
    assert x.shape == (32, 32, 3) and int(label) == 1 and int(kind) == 2 and torch.isnan(tags[3])
    assert int(ds[0][2]) == 0
    batch = torch.utils.data.default_collate([ds[i] for i in range(3)])  # variable crop sizes collate after resizing
    assert batch[0].shape == (3, 32, 32, 3) and batch[0].dtype == torch.uint8
    with pytest.raises(ValueError, match="68-point landmarks"):
        FDFPretextDataset(Layout(), input_size=32)  # on the fly (the default) needs them
    with pytest.raises(ValueError, match="manipulations must be"):
        FDFPretextDataset(Layout(), manipulations="published")


def test_variant_pool_is_seeded_and_bounded():
    ds = make_dataset(n=6, variants_per_kind=2)
    ds.warm()
    assert len(ds._pool) == 6 * (1 + 4 * 2)
    images = {ds.raw_item(i)[0].tobytes() for e in range(5) for i in range(6) if not ds.set_epoch(e)}
    assert len(images) <= len(ds._pool)
    again = make_dataset(n=6, variants_per_kind=2)
    assert all(np.array_equal(v, again.variant(*k)) for k, v in ds._pool.items())
    with pytest.raises(ValueError, match="variants_per_kind"):
        make_dataset(variants_per_kind=0)


def test_saturation_diagnostic_by_hand():
    import math

    from aigfd_lite.pretext.batches import saturation_diagnostic

    # one confidently wrong manipulated item (logit -6), one correct real item, one barely wrong real item
    table = saturation_diagnostic(np.array([-6.0, -2.0, 0.1]), np.array([1, 0, 0])).set_index("items")
    assert table.loc["all", "n"] == 3 and table.loc["wrong", "n"] == 2 and table.loc["wrong, saturated", "n"] == 1
    q = 1 / (1 + math.exp(6.0))
    # fidelity, label 1: d/dz [1 - sqrt(q + eps) - sqrt(eps)] = -q (1 - q) / (2 sqrt(q + eps)); BCE: q - 1
    fidelity = q * (1 - q) / (2 * math.sqrt(q + 1e-8))
    assert table.loc["wrong, saturated", "mean |dL/dz| fidelity"] == pytest.approx(fidelity, rel=1e-6)
    assert table.loc["wrong, saturated", "mean |dL/dz| BCE"] == pytest.approx(1 - q, rel=1e-9)
    assert fidelity < 0.03 < 0.99 < 1 - q
    with pytest.raises(ValueError, match="equal 1-d"):
        saturation_diagnostic(np.zeros(3), np.zeros(2))


def test_decode_rate_per_core_times_real_work():
    from aigfd_lite.pretext.batches import decode_rate_per_core

    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    assert 0 < decode_rate_per_core(images, input_size=64) < float("inf")
    with pytest.raises(ValueError, match="at least one"):
        decode_rate_per_core(images[:0])
