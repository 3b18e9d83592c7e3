"""Tests of aigfd_lite.models.image_files: streamed featurisation equals the in-RAM path, unreadable files are counted."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from aigfd_lite.models.image_files import ImageFiles, stream_features
from aigfd_lite.models.features import extract_features
from aigfd_lite.models.network import ExifManipNet
from aigfd_lite.evaluation.protocol import Protocol, featurize
from aigfd_lite.evaluation import testsets
from aigfd_lite.evaluation.testsets import as_tested, load_images


def tiny_model() -> ExifManipNet:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 16))
    return ExifManipNet(feature_dim=16, backbone=backbone).eval()


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(11):  # sizes differ: every image is resized on reading
        path = tmp_path / f"{i:02d}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(rng.integers(0, 256, (20 + 3 * i, 30 + i, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    bad = tmp_path / "05_broken.png"
    bad.write_bytes(b"not an image")
    paths.insert(5, bad)
    return paths


def test_indexing_reads_like_load_images(files):
    good = [p for p in files if "broken" not in p.name]
    array, failed = load_images(files, 24)
    assert [p.name for p in failed] == ["05_broken.png"]
    streamed = ImageFiles(good, 24)
    assert streamed.shape == (11, 24, 24, 3) and streamed.dtype == np.uint8 and len(streamed) == 11
    np.testing.assert_array_equal(streamed[3], array[3])
    np.testing.assert_array_equal(streamed[2:6], array[2:6])
    np.testing.assert_array_equal(streamed.subset([7, 1])[:], array[[7, 1]])
    assert streamed[:0].shape == (0, 24, 24, 3)
    with pytest.raises(IndexError):
        streamed[11]
    controlled = ImageFiles(good, 24, native_size=8)  # the resolution path of the lite protocol, per image
    np.testing.assert_array_equal(controlled[:4], as_tested(array[:4], native_size=8, test_size=24))


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_features_equal_the_in_ram_path_and_count_unreadable(files, workers):
    model = tiny_model()
    array, _ = load_images(files, 24)
    in_ram = extract_features(model, array, input_size=16, batch_size=4, progress=False)
    streamed_files = ImageFiles(files, 24)
    streamed = stream_features(model, streamed_files, input_size=16, batch_size=4, num_workers=workers)
    assert streamed.dtype == np.float32 and streamed.shape == in_ram.shape == (11, 16)
    # same decode and normalisation; float32 rounding may differ in the last bit where a batch differs in size
    np.testing.assert_allclose(streamed, in_ram, rtol=1e-6, atol=1e-7)
    assert [p.name for p in streamed_files.unreadable] == ["05_broken.png"]
    again = extract_features(model, ImageFiles(files, 24), input_size=16, batch_size=4, progress=False)
    np.testing.assert_allclose(again, in_ram, rtol=1e-6, atol=1e-7)  # extract_features streams ImageFiles itself
    assert not model.training


def test_featurize_streams_and_keeps_test_sets_balanced(files):
    class Cfg:
        input_size, num_workers = 16, 0

        @staticmethod
        def resolved_device():
            return "cpu"

    real, fake = ImageFiles(files[:6], 24), ImageFiles(files[6:], 24)  # one unreadable real file
    protocol = Protocol(ImageFiles(files[6:], 24), {"G": testsets.TestSet("G", real, fake)})
    out = featurize(tiny_model(), protocol, Cfg())
    r, f = out["sets"]["G"]
    assert len(r) == len(f) == 5 and out["fit"].shape == (6, 16)
    assert protocol.test_sets["G"].skipped == 1
