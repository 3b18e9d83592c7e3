"""Tests of aigfd_lite.data: `python -m aigfd_lite.data check DATA_ROOT` on miniature trees in the official layout."""
from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aigfd_lite.data.check import check_layout, format_report, main
from aigfd_lite.data.miniature import write_test_tree, write_training_tree
from aigfd_lite.evaluation.testsets import GENERATOR_FOLDERS
from conftest import ROOT



@pytest.fixture
def tree(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    tags = np.tile([5.6, 1 / 250, 50.0, 100.0], (6, 1))
    write_training_tree(tmp_path, images, tags, manipulated=np.repeat(images[:, None], 4, axis=1))
    reals, fakes = rng.integers(0, 256, (2, 6, 32, 32, 3), dtype=np.uint8)  # faces of their own: no overlap
    write_test_tree(tmp_path, reals, {f: fakes[:3] for f in GENERATOR_FOLDERS.values()}, n_train=4)
    return tmp_path


def counts(reports):
    return {r.part.split(" (")[0]: (r.present, r.missing, r.unreadable) for r in reports}


def test_complete_tree_passes(tree, capsys):
    reports = check_layout(tree)
    c = counts(reports)
    assert c["training: FDF images"] == (6, 0, 0) and c["training: EXIF JSON"] == (6, 0, 0)
    assert c["test: train.txt"] == (4, 0, 0) and c["test: test.txt"] == (2, 0, 0) and c["test: SDXL"] == (3, 0, 0)
    assert len(reports) == 6 + 2 + 9 + 2  # and the two overlap rows
    assert [r.overlap for r in reports[-2:]] == [0, 0] and all(r.part.startswith("overlap") for r in reports[-2:])
    assert main(["check", str(tree)]) == 0
    assert "every required part is present" in capsys.readouterr().out


def test_missing_and_unreadable_parts_are_counted(tree, capsys):
    shutil.rmtree(tree / "data" / "HPS")
    (tree / "data" / "celeba-face" / "00001.png").unlink()  # listed in train.txt
    exif = tree / "SSL_training_data" / "fdf_ccby2_exif_update_filtered_v2"
    next(exif.iterdir()).write_text('{"EXIF": {"Aper')  # truncated JSON
    image = tree / "SSL_training_data" / "FDF" / "data" / "fdf" / "images" / "128" / "100002.png"
    image.write_bytes(image.read_bytes()[:50])
    for k in range(4):  # optional part: reported, not fatal
        (tree / "SSL_training_data" / "FDF" / "data" / "face_dataaug_neg" / f"100003_{k}.png").unlink()
    reports = check_layout(tree, sample=0)
    c = counts(reports)
    assert c["test: HPS"] == (0, 1, 0) and c["test: train.txt"] == (3, 1, 0)
    assert c["training: EXIF JSON"][2] == 1 and c["training: FDF images"][2] == 1
    assert c["training: manipulated files"][:2] == (5, 1)
    assert [r.part for r in reports if r.failed] == ["test: HPS (HPS/)"]
    assert main(["check", str(tree)]) == 1
    assert "MISSING" in capsys.readouterr().out


def test_unsafe_id_map_is_refused_and_fails(tree):
    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    id_map = tree / "SSL_training_data" / "FDF" / "data" / "id_vs_fdfName.pkl"
    id_map.write_bytes(pickle.dumps({"100000": Evil()}))
    r = next(r for r in check_layout(tree, only="training") if r.part.startswith("training: id map"))
    assert r.failed and r.unreadable == 1 and "refusing" in r.note


def test_one_side_only_and_absent_roots(tree, tmp_path, capsys):
    assert main(["check", str(tree / "data"), "--only", "test"]) == 0
    reports = check_layout(tree / "data", only="training")  # the test folder's sibling is found
    assert not any(r.failed for r in reports)
    empty = tmp_path / "x" / "empty"  # no layout here nor beside it
    empty.mkdir(parents=True)
    assert [r.failed for r in check_layout(empty)] == [True, True]
    assert "SSL_training_data" in format_report(check_layout(empty))
    assert main(["check", str(tmp_path / "nowhere")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_module_runs_from_the_command_line(tree):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "aigfd_lite.data", "check", str(tree), "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"failed": false' in done.stdout


def test_every_required_image_undecodable_fails_with_counts(tree, capsys):
    """It said "every required part is present" (exit 0) when no image could be decoded: now it fails, with counts."""
    for folder in (tree / "SSL_training_data" / "FDF" / "data" / "fdf" / "images" / "128", tree / "data" / "SDXL"):
        for image in folder.iterdir():
            image.write_bytes(b"not a png at all")
    reports = {r.part.split(" (")[0]: r for r in check_layout(tree, sample=0)}
    fdf, sdxl = reports["training: FDF images"], reports["test: SDXL"]
    assert (fdf.present, fdf.unreadable, fdf.checked, fdf.failed) == (6, 6, 6, True)
    assert (sdxl.unreadable, sdxl.checked, sdxl.failed) == (3, 3, True)
    assert not reports["test: train.txt"].failed
    assert main(["check", str(tree), "--sample", "0"]) == 1
    out = capsys.readouterr().out
    assert "UNREADABLE" in out and "every required part" not in out


def test_train_test_overlap_is_flagged(tree, capsys):
    """The same face on both sides of a split: a copied file (same bytes), or a test.txt line naming a train face."""
    data = tree / "data"
    shutil.copy(data / "celeba-face" / "00000.png", data / "SDXL" / "copied.png")  # a GMM face among the fakes
    fdf = tree / "SSL_training_data" / "FDF" / "data" / "fdf" / "images" / "128" / "100001.png"
    shutil.copy(fdf, data / "HPS" / "from_fdf.png")  # a training face in a test set
    train = (data / "train.txt").read_text().split()
    (data / "test.txt").write_text("\n".join([*(data / "test.txt").read_text().split(), train[1]]) + "\n")
    reports = {r.part: r for r in check_layout(tree)}
    gmm = reports["overlap: train.txt (GMM faces) vs test sets"]
    assert gmm.overlap == 2 and gmm.failed and "celeba-face/00000.png" in gmm.note
    fdf_row = reports["overlap: FDF images vs test sets"]
    assert fdf_row.overlap == 1 and fdf_row.failed and "from_fdf.png" in fdf_row.note
    assert main(["check", str(tree)]) == 1
    assert "OVERLAP: 2 training file(s)" in capsys.readouterr().out
    assert main(["check", str(tree), "--only", "training"]) == 0  # one side only: nothing to compare


def test_overlap_is_found_through_links_and_only_hashes_size_matches(tmp_path, monkeypatch):
    from aigfd_lite.data import overlap
    from aigfd_lite.data.overlap import shared_files

    a, b, c = (tmp_path / n for n in ("a.png", "b.png", "c.png"))
    a.write_bytes(b"x" * 10)
    b.write_bytes(b"y" * 20)
    c.write_bytes(b"z" * 30)
    os.link(a, tmp_path / "hard.png")
    (tmp_path / "soft.png").symlink_to(b)
    (tmp_path / "same_bytes.png").write_bytes(b"z" * 30)
    (tmp_path / "same_size.png").write_bytes(b"w" * 30)
    hashed = []
    real = overlap.sha256_of
    monkeypatch.setattr(overlap, "sha256_of", lambda p: hashed.append(p.name) or real(p))  # where overlap looks it up
    pairs = shared_files([a, b, c], [tmp_path / n for n in ("hard.png", "soft.png", "same_size.png",
                                                           "same_bytes.png")])
    assert [(x.name, y.name) for x, y in pairs] == [("a.png", "hard.png"), ("b.png", "soft.png"),
                                                     ("c.png", "same_bytes.png")]
    # links need no hash; only the files of c.png's size are hashed (same size, other bytes: not a match)
    assert sorted(hashed) == ["c.png", "same_bytes.png", "same_size.png"]
