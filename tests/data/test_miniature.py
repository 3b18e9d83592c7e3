"""Tests of aigfd_lite.data.miniature: the official layout in miniature, read back by the book's own loaders."""
from __future__ import annotations

import numpy as np
import pytest

from aigfd_lite import resolve
from aigfd_lite.data import miniature
from aigfd_lite.exif.flickr import parse_flickr_exif
from aigfd_lite.fdf.layout import FDFLayout
from aigfd_lite.data.miniature import (FIRST_NAME, fdf_keypoints, flickr_strings, lite_miniature, write_synthetic_tree,
                                  write_test_tree, write_training_tree)
from aigfd_lite.evaluation.testsets import GENERATOR_FOLDERS, PaperLayout


@pytest.mark.parametrize("tags, expected", [
    ((5.6, 1 / 250, 50.0, 100.0), {"Aperture Value": "F5.6", "Exposure Time": "1/250 sec",
                                   "Focal Length": "50.0 mm", "ISO Speed Ratings": "100"}),
    ((2.8, 2.0, 18.0, 1600.0), {"Aperture Value": "F2.8", "Exposure Time": "2 sec", "Focal Length": "18.0 mm",
                                "ISO Speed Ratings": "1600"}),
    ((8.0, 0.3, np.nan, np.nan), {"Aperture Value": "F8", "Exposure Time": "0.3 sec"}),
])
def test_flickr_strings_by_hand_and_parsed_back(tags, expected):
    strings = flickr_strings(tags)
    assert strings == expected
    parsed = parse_flickr_exif(strings)
    got = [parsed.aperture, parsed.exposure_time, parsed.focal_length, parsed.iso]
    np.testing.assert_allclose([np.nan if v is None else v for v in got], tags, rtol=1e-9)


def test_training_tree_reads_back_through_fdf_layout(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    tags = np.array([[5.6, 1 / 250, 50, 100], [2.8, 1 / 60, 35, 400], [4, 0.5, 85, 200], [11, 1 / 1000, 24, 100],
                     [1.8, 1 / 30, 50, 3200]], dtype=np.float64)
    negs = np.repeat(images[:, None], 4, axis=1)
    write_training_tree(tmp_path, images, tags, manipulated=negs,
                        keypoints=np.full((5, 7, 2), 0.5))
    layout = FDFLayout(tmp_path, index=False)
    assert len(layout) == 5 and not layout.skips
    np.testing.assert_allclose(np.stack([f.tags for f in layout.faces]), tags, rtol=1e-9)
    assert layout.item(0, 3).image.shape == (128, 128, 3)  # the corpus box enlarged 1.3x is the whole image
    np.testing.assert_allclose(layout.landmarks(str(FIRST_NAME)), np.full((7, 2), 0.5))


def test_synthetic_tree_links_one_image(tmp_path, monkeypatch):
    monkeypatch.setattr(miniature, "MAX_LINKS", 150)  # a new pool file every 150 links
    root = write_synthetic_tree(tmp_path, 40, distinct_json=7)
    image = root / "FDF" / "data" / "fdf" / "images" / "128" / f"{FIRST_NAME}.png"
    assert image.stat().st_nlink == 1 + 150  # the pool file and its 150 links
    assert (tmp_path / "pool" / "face_1.png").stat().st_nlink == 1 + 200 - 150
    layout = FDFLayout(tmp_path, index=False)
    assert len(layout) + sum(layout.skips.values()) == 40
    assert len({tuple(f.tags) for f in layout.faces}) <= 7


def test_test_tree_reads_back_through_paper_layout(tmp_path):
    reals = np.zeros((6, 32, 32, 3), np.uint8)
    data = write_test_tree(tmp_path, reals, {f: reals[:2] for f in GENERATOR_FOLDERS.values()}, n_train=4)
    layout = PaperLayout(data)
    assert len(layout.gmm_train_paths()) == 4 and len(layout.test_real_paths()) == 2
    assert layout.available_generators() == list(GENERATOR_FOLDERS)


def test_keypoints_from_68_landmarks():
    lm = np.tile([64.0, 64.0], (68, 1))
    lm[30] = [60, 70]
    points = fdf_keypoints(lm, 128)
    assert points.shape == (7, 2) and points[0].tolist() == [60 / 128, 70 / 128] and points[5, 1] == 1.0


def test_lite_miniature_is_built_once_and_says_it_is_a_stand_in(tmp_path):
    cfg = resolve("lite")
    roots = lite_miniature(cfg, tmp_path / "mini", n_faces=3, n_generated=2)
    assert "DCGAN" in (tmp_path / "mini" / "README.txt").read_text()
    assert len(FDFLayout(roots["training"], index=False)) == 3
    stamp = (tmp_path / "mini" / "settings.json").stat().st_mtime_ns
    lite_miniature(cfg, tmp_path / "mini", n_faces=3, n_generated=2)
    assert (tmp_path / "mini" / "settings.json").stat().st_mtime_ns == stamp  # reused, not rebuilt
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "precious.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a miniature"):
        lite_miniature(cfg, tmp_path / "other", n_faces=3, n_generated=2)
