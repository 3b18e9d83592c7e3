"""aigfd_lite.models.feature_cache: full-profile features computed once per model and file list, never read stale."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from aigfd_lite.models.feature_cache import features_dir, cached_features, model_digest
from aigfd_lite.models.image_files import ImageFiles


@pytest.fixture()
def files(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGFD_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.delenv("AIGFD_STORE", raising=False)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        path = tmp_path / "img" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.BatchNorm2d(2))


def test_second_call_reads_the_cache_with_its_unreadable_list(files, tmp_path):
    calls = []

    def compute(images):
        calls.append(1)
        images.unreadable = [files[2]]
        return np.arange(4, dtype=np.float32).reshape(2, 2) + len(calls)

    first = ImageFiles(files, 16)
    a = cached_features(_net(), first, lambda: compute(first), input_size=16)
    second = ImageFiles(files, 16)
    b = cached_features(_net(), second, lambda: compute(second), input_size=16)
    assert len(calls) == 1 and np.array_equal(a, b) and second.unreadable == [files[2]]
    assert features_dir() == tmp_path / "build" / "features" and len(list(features_dir().glob("*.npy"))) == 1


def test_other_weights_settings_or_changed_files_are_recomputed(files):
    calls = []

    def run(net, paths=files, size=16, **settings):
        return cached_features(net, ImageFiles(paths, size), lambda: calls.append(1) or np.zeros((3, 2)),
                               **settings)

    run(_net(0), input_size=16)
    run(_net(1), input_size=16)  # other weights
    run(_net(0), input_size=32)  # other setting
    run(_net(0), size=8, input_size=16)  # other preprocessing
    run(_net(0), paths=files[:2], input_size=16)  # other files
    st = os.stat(files[0])
    os.utime(files[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a file rewritten
    run(_net(0), input_size=16)
    assert len(calls) == 6
    run(_net(0), input_size=16)
    assert len(calls) == 6


def test_store_holds_the_cache_and_digest_sees_buffers(files, tmp_path, monkeypatch):
    monkeypatch.setenv("AIGFD_STORE", str(tmp_path / "drive"))
    cached_features(_net(), ImageFiles(files, 16), lambda: np.ones((3, 2)), input_size=16)
    assert len(list((tmp_path / "drive" / "features").glob("*.npy"))) == 1
    net = _net()
    before = model_digest(net)
    net[1].running_mean += 1  # a buffer, not a parameter
    assert model_digest(net) != before


def test_interrupted_cache_write_leaves_no_partial_file(files, monkeypatch):
    def killed(fh, array):
        fh.write(b"\x93NUMPY half an array")
        raise KeyboardInterrupt

    images = ImageFiles(files, 16)
    with monkeypatch.context() as patch:
        patch.setattr(np, "save", killed)  # feature_cache calls np.save through the numpy module
        with pytest.raises(KeyboardInterrupt):
            cached_features(_net(), images, lambda: np.ones((3, 2), np.float32), input_size=16)
    assert list(features_dir().iterdir()) == []
    assert cached_features(_net(), images, lambda: np.ones((3, 2), np.float32), input_size=16).shape == (3, 2)
    assert sorted(p.suffix for p in features_dir().iterdir()) == [".json", ".npy"]
