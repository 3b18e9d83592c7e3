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

from aigfd_lite.data import check_layout, format_report, main
from aigfd_lite.miniature import write_test_tree, write_training_tree
from aigfd_lite.testsets import GENERATOR_FOLDERS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tree(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    tags = np.tile([5.6, 1 / 250, 50.0, 100.0], (6, 1))
    write_training_tree(tmp_path, images, tags, manipulated=np.repeat(images[:, None], 4, axis=1))
    write_test_tree(tmp_path, images, {f: images[:3] for f in GENERATOR_FOLDERS.values()}, n_train=4)
    return tmp_path


def counts(reports):
    return {r.part.split(" (")[0]: (r.present, r.missing, r.unreadable) for r in reports}


def test_complete_tree_passes(tree, capsys):
    reports = check_layout(tree)
    c = counts(reports)
    assert c["training: FDF images"] == (6, 0, 0) and c["training: EXIF JSON"] == (6, 0, 0)
    assert c["test: train.txt"] == (4, 0, 0) and c["test: test.txt"] == (2, 0, 0) and c["test: SDXL"] == (3, 0, 0)
    assert len(reports) == 6 + 2 + 9
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
