"""aigfd_lite.evaluation.testsets: resampling, balanced lite sets, and the paper's data layout on a small fixture."""
import numpy as np
import pytest
from PIL import Image

from aigfd_lite.evaluation.testsets import (GENERATOR_FOLDERS, PaperLayout, as_tested, balanced_indices, lite_test_set,
                                 load_images, load_test_set, resample, through)
from aigfd_lite.images import recompress


def test_resample_constant_and_shape():
    img = np.full((2, 8, 8, 3), 77, np.uint8)
    out = resample(img, 4)
    assert out.shape == (2, 4, 4, 3) and out.dtype == np.uint8 and np.all(out == 77)
    with pytest.raises(ValueError):
        resample(img.astype(np.float32), 4)


def test_down_up_removes_fine_detail():
    # A one-pixel checkerboard survives no trip through half the resolution: it averages to grey.
    board = (np.indices((16, 16)).sum(0) % 2 * 255).astype(np.uint8)
    img = np.repeat(board[None, :, :, None], 3, axis=3)
    out = through(img, 8, 16)
    assert out.shape == img.shape and abs(out.astype(float).mean() - 127.5) < 1 and out.std() < 2


def test_balanced_indices_are_seeded_and_equal():
    r1, f1 = balanced_indices(10, 7, 5, seed=2024)
    r2, f2 = balanced_indices(10, 7, 5, seed=2024)
    assert len(r1) == len(f1) == 5 and np.array_equal(r1, r2) and np.array_equal(f1, f2)
    assert len(balanced_indices(10, 3, 50)[0]) == 3
    with pytest.raises(ValueError):
        balanced_indices(0, 3, 5)


def test_lite_set_controls_resolution():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    fake = rng.integers(0, 256, (9, 8, 8, 3), dtype=np.uint8)
    ctrl = lite_test_set("g", real, fake, test_size=16, n=4)
    raw = lite_test_set("g", real, fake, test_size=16, n=4, control_resolution=False)
    assert len(ctrl) == 4 and ctrl.real.shape == ctrl.fake.shape == (4, 16, 16, 3) and ctrl.native_size == 8
    np.testing.assert_array_equal(ctrl.fake, raw.fake)
    # Controlled reals went through 8 px: smoother than the directly resized ones.
    smooth = lambda x: np.abs(np.diff(x.astype(float), axis=1)).mean()
    assert smooth(ctrl.real) < smooth(raw.real)


def test_common_bottleneck_applies_to_real_and_generated_faces():
    """With a native size below the generator's own (the lite protocol's common path), fakes go through it too,
    and as_tested is the very preprocessing the test set applies, so fit reals can take the same path."""
    rng = np.random.default_rng(1)
    real = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    fake = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    ts = lite_test_set("g", real, fake, test_size=16, n=5, native_size=8)
    np.testing.assert_array_equal(ts.fake, as_tested(fake, native_size=8, test_size=16))
    np.testing.assert_array_equal(ts.real, as_tested(real, native_size=8, test_size=16))
    assert not np.array_equal(ts.fake, fake)  # 16 -> 8 -> 16 lost detail
    np.testing.assert_array_equal(as_tested(real, native_size=8, test_size=16, control_resolution=False),
                                  resample(real, 16))
    np.testing.assert_array_equal(as_tested(real, native_size=None, test_size=16), resample(real, 16))


def test_uncontrolled_path_skips_the_common_encoder():
    """Chapter 6's uncontrolled test must differ from the controlled one even when the native size is the test
    size (lite: 64 px both): it drops the common JPEG step, which then is the only difference."""
    rng = np.random.default_rng(2)
    faces = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    kw = dict(native_size=16, test_size=16, jpeg_quality=75)
    controlled = as_tested(faces, **kw)
    uncontrolled = as_tested(faces, **kw, control_resolution=False)
    np.testing.assert_array_equal(uncontrolled, faces)
    assert not np.array_equal(controlled, uncontrolled)
    np.testing.assert_array_equal(controlled, recompress(faces, 75))


def _png(path, value, size=20):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)


@pytest.fixture
def layout(tmp_path):
    root = tmp_path / "data"
    for i in range(10):
        _png(root / "celeba-face" / f"{i}.jpg", i * 10)
    (root / "train.txt").write_text("\n".join(f"celeba-face/{i}.jpg" for i in range(6)) + "\n\n")
    # test.txt written on another machine: foreign absolute paths, plus one that does not exist anywhere.
    (root / "test.txt").write_text("\n".join(f"/home/someone/celeba-face/{i}.jpg" for i in (6, 7, 8, 9, 99)))
    for i in range(3):
        _png(root / "stylegan2" / f"s{i}.png", 200)
    for i in range(5):
        _png(root / "LDM" / "sub" / f"l{i}.png", 250)
    (root / "LDM" / "notes.txt").write_text("not an image")
    return PaperLayout(root)


def test_layout_lists(layout):
    assert [p.name for p in layout.gmm_train_paths(4)] == ["0.jpg", "1.jpg", "2.jpg", "3.jpg"]
    assert len(layout.gmm_train_paths()) == 6
    reals = layout.test_real_paths()
    assert [p.name for p in reals] == ["6.jpg", "7.jpg", "8.jpg", "9.jpg"] and layout.missing["test.txt"] == 1


def test_layout_generators_and_balance(layout):
    assert layout.available_generators() == ["StyleGAN2", "LDM"]
    assert len(layout.generator_paths("LDM")) == 5  # recursive, the .txt ignored
    sets = layout.balanced_paths(n_per_generator=4, seed=2024)
    assert {k: (len(r), len(f)) for k, (r, f) in sets.items()} == {"StyleGAN2": (3, 3), "LDM": (4, 4)}
    assert sets == layout.balanced_paths(n_per_generator=4, seed=2024)
    with pytest.raises(FileNotFoundError):
        layout.generator_paths("SDXL")
    with pytest.raises(ValueError, match="unknown generator"):
        layout.generator_paths("Imagen")
    assert len(GENERATOR_FOLDERS) == 9


def test_load_images_counts_unreadable(layout, tmp_path):
    real, fake = layout.balanced_paths(n_per_generator=3, generators=["LDM"])["LDM"]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    images, failed = load_images([*fake, broken], size=12)
    assert images.shape == (3, 12, 12, 3) and failed == [broken]
    assert np.all(images == 250)
    ts = load_test_set("LDM", real, [*fake[:2], broken], size=12)
    assert len(ts) == 2 and ts.skipped == 1


def test_missing_root_and_lists(tmp_path):
    with pytest.raises(FileNotFoundError):
        PaperLayout(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="train.txt"):
        PaperLayout(tmp_path).gmm_train_paths()
