"""Tests for aigfd_lite.camera: tag sampling against the paper's quartiles, each effect's direction and size, and the
whole simulator's determinism and input checks. The test face is a real photograph (scikit-image's astronaut)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage import data

from aigfd_lite.camera import simulator as C


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    crop = data.astronaut()[10:230, 110:330]
    return np.asarray(Image.fromarray(crop).resize((128, 128), Image.Resampling.BILINEAR))


def lap_var(img: np.ndarray, where: np.ndarray | None = None) -> float:
    """Variance of the Laplacian of the grey image (a standard sharpness measure)."""
    grey = img.astype(np.float64).mean(axis=2)
    lap = ndimage.laplace(grey)
    return float(lap[where].var() if where is not None else lap.var())


# ------------------------------------------------------------------------------------------------ tags
def test_tag_order_matches_exif_module():
    assert C.TAGS == ("aperture", "exposure_time", "focal_length", "iso")
    if importlib.util.find_spec("aigfd_lite.exif") is None:
        pytest.skip("aigfd_lite.exif not written yet: only the literal order is checked")
    from aigfd_lite.exif.tags import ORDINAL_TAGS

    assert tuple(ORDINAL_TAGS) == C.TAGS


@pytest.mark.parametrize("snap, tol", [(False, 0.03), (True, 0.05)])
def test_sampled_quartiles_match_paper(snap, tol):
    tags = C.sample_tags(np.random.default_rng(0), 40_000, snap=snap)
    assert tags.shape == (40_000, 4) and tags.dtype == np.float64
    got = np.quantile(tags, [0.25, 0.5, 0.75], axis=0)
    for j, tag in enumerate(C.TAGS):
        want = np.array(C.PAPER_QUARTILES[tag])
        np.testing.assert_allclose(got[:, j], want, rtol=tol, err_msg=tag)
    # The paper's quartiles in its own units: ISO 200/400/800, F2.9/4.5/5.7, 1/500..1/60 s, 20/50/125 mm.
    assert C.PAPER_QUARTILES["exposure_time"] == (1 / 500, 1 / 200, 1 / 60)


def test_snapped_tags_are_camera_stops_and_in_range():
    tags = C.sample_tags(np.random.default_rng(1), 5000)
    for j, tag in enumerate(C.TAGS):
        lo, hi = C.TAG_RANGES[tag]
        assert tags[:, j].min() >= lo and tags[:, j].max() <= hi
        if tag in C.STOPS:
            assert np.isin(tags[:, j], C.STOPS[tag]).all(), tag
        else:
            np.testing.assert_array_equal(tags[:, j], np.round(tags[:, j]))
    assert 200.0 in tags[:, 3] and 1 / 250 in tags[:, 1] and 2.8 in tags[:, 0]
    # Ties exist (the ranking loss gives them label 0.5), as in real EXIF.
    assert len(np.unique(tags[:, 3])) < 40


def test_sampling_is_deterministic_and_checks_n():
    a = C.sample_tags(np.random.default_rng(7), 10)
    b = C.sample_tags(np.random.default_rng(7), 10)
    np.testing.assert_array_equal(a, b)
    assert C.sample_tags(np.random.default_rng(7), 0).shape == (0, 4)
    with pytest.raises(ValueError):
        C.sample_tags(np.random.default_rng(7), -1)


def test_as_tag_array_accepts_mapping_and_sequence_and_rejects_bad_tags():
    as_dict = {"iso": 400, "focal_length": 50, "aperture": 4.5, "exposure_time": 0.005}
    np.testing.assert_array_equal(C.as_tag_array(as_dict), [4.5, 0.005, 50, 400])
    np.testing.assert_array_equal(C.as_tag_array([4.5, 0.005, 50, 400]), [4.5, 0.005, 50, 400])
    for bad in ({"iso": 400}, {**as_dict, "iso": None}, [1, 2, 3], [4.5, np.nan, 50, 400], [4.5, 0.005, 0, 400]):
        with pytest.raises(ValueError):
            C.as_tag_array(bad)


# ------------------------------------------------------------------------------------------------ ISO
def test_noise_params_hand_computed():
    assert C.noise_params(100) == pytest.approx((1e-4, 2e-6))
    assert C.noise_params(1600) == pytest.approx((1.6e-3, 2e-6 * 256))


def test_sensor_noise_variance_matches_poisson_gaussian_model():
    x = np.full((256, 256, 3), 0.25, np.float32)
    out = C.sensor_noise(x, 1600, np.random.default_rng(0), linear=True)
    want = 1.6e-3 * 0.25 + 2e-6 * 256  # a * signal + b = 9.12e-4
    assert out.var() == pytest.approx(want, rel=0.03)
    assert out.mean() == pytest.approx(0.25, abs=1e-3)


def test_sensor_noise_rises_with_iso_and_with_signal():
    grey = np.full((128, 128, 3), 128, np.uint8)
    variances = [C.sensor_noise(grey, iso, np.random.default_rng(0)).astype(float).var()
                 for iso in (100, 400, 1600, 6400)]
    assert all(a < b for a, b in zip(variances, variances[1:])), variances
    dark = C.sensor_noise(np.full((128, 128, 3), 0.05, np.float32), 800, np.random.default_rng(0), linear=True)
    bright = C.sensor_noise(np.full((128, 128, 3), 0.6, np.float32), 800, np.random.default_rng(0), linear=True)
    assert bright.var() > 2 * dark.var()  # shot noise: variance grows with the signal


# ------------------------------------------------------------------------------------------------ exposure time
def test_exposure_gain_and_clipping():
    assert C.exposure_gain(1 / 200) == pytest.approx(1.0)
    assert C.exposure_gain(1 / 50) == pytest.approx(2.0)  # 4x the light, strength 0.5
    x = np.tile(np.array([0.3, 0.7, 0.0], np.float32), (2, 2, 1))
    np.testing.assert_allclose(C.exposure(x, 1 / 50, linear=True)[0, 0], [0.6, 1.0, 0.0], rtol=1e-6)


def test_brightness_rises_with_exposure_time(face):
    means = [C.exposure(face, t).mean() for t in (1 / 1000, 1 / 200, 1 / 60, 1 / 15)]
    assert all(a < b for a, b in zip(means, means[1:])), means
    np.testing.assert_array_equal(C.exposure(face, 1 / 200), face)  # the reference exposure changes nothing


def test_line_kernel_is_normalised_symmetric_and_long():
    for length, angle in ((3.3, 0.0), (8.0, 0.7), (1.0, 2.0)):
        k = C.line_kernel(length, angle)
        assert k.shape[0] % 2 == 1 and k.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-12)
    k = C.line_kernel(8.0, 0.0)  # horizontal: all weight on the centre row
    c = k.shape[0] // 2
    assert k[c].sum() == pytest.approx(1.0)
    offsets = np.arange(k.shape[1]) - c
    # Second moment of a uniform segment of length L is L^2 / 12 (+ the bilinear splat's small spread).
    assert (k[c] * offsets ** 2).sum() == pytest.approx(8.0 ** 2 / 12, rel=0.1)


def test_motion_blur_grows_with_exposure_time(face):
    assert C.blur_length_px(1 / 500) < 0.5 < C.blur_length_px(1 / 60) < C.blur_length_px(1 / 8)
    np.testing.assert_array_equal(C.motion_blur(face, 1 / 1000, np.random.default_rng(0)), face)
    sharpness = [lap_var(C.motion_blur(face, t, np.random.default_rng(0))) for t in (1 / 1000, 1 / 125, 1 / 30, 1 / 8)]
    assert all(a > b for a, b in zip(sharpness, sharpness[1:])), sharpness
    assert sharpness[-1] < 0.2 * sharpness[0]


# ------------------------------------------------------------------------------------------------ aperture
def test_defocus_blurs_background_more_for_small_f_numbers_and_keeps_the_face(face):
    mask = C.default_face_mask(128, 128)
    background, core = mask == 0, mask == 1
    assert background.mean() > 0.1 and core.mean() > 0.2
    sharp = [lap_var(C.defocus_background(face, n), background) for n in (16, 5.6, 2.8, 1.4)]
    assert all(a > b for a, b in zip(sharp, sharp[1:])), sharp
    x = face.astype(np.float32) / 255
    out = C.defocus_background(x, 1.4)
    np.testing.assert_allclose(out[core], x[core], atol=1e-6)  # the face stays in focus
    custom = np.zeros((128, 128), np.float32)  # everything background: the whole image blurs
    assert lap_var(C.defocus_background(face, 1.4, custom)) < 0.5 * lap_var(face)
    with pytest.raises(ValueError):
        C.defocus_background(face, 2.8, np.ones((64, 64)))


def test_vignetting_grows_as_f_number_falls():
    assert C.vignette_strength(2.0) == pytest.approx(0.25)
    assert C.vignette_strength(1.0) == pytest.approx(0.6)  # capped
    flat = np.ones((64, 64, 3), np.float32)
    out = C.vignette(flat, 2.0, linear=True)
    r2 = ((31.5 / 64) ** 2 * 2) / 0.5  # corner pixel centre
    assert out[0, 0, 0] == pytest.approx(1 - 0.25 * r2, rel=1e-5)
    grey = np.full((64, 64, 3), 200, np.uint8)
    ratios = [(lambda o: o[0, 0].mean() / o[32, 32].mean())(C.vignette(grey, n)) for n in (16, 5.6, 2.8, 1.4)]
    assert all(a > b for a, b in zip(ratios, ratios[1:])), ratios


# ------------------------------------------------------------------------------------------------ focal length
def test_distortion_changes_sign_with_focal_length():
    ks = [C.distortion_k1(f) for f in (14, 20, 35, 50, 85, 125, 400)]
    assert all(a < b for a, b in zip(ks, ks[1:]))
    assert ks[1] < 0 and ks[3] == 0 and ks[5] > 0
    assert C.distortion_k1(20) == pytest.approx(-C.distortion_k1(125), rel=1e-9)


def row_of_line(img: np.ndarray, col: int) -> float:
    column = img[:, col, 0].astype(float)
    return float((column * np.arange(len(column))).sum() / column.sum())


def test_barrel_bows_lines_outwards_and_pincushion_inwards():
    img = np.zeros((128, 128, 3), np.uint8)
    img[30:32] = 255  # a horizontal line above the centre
    bow = {}
    for f in (20, 125):
        out = C.radial_distortion(img, f)
        # > 0: the middle of the line lies farther from the image centre than its ends
        bow[f] = row_of_line(out, 10) - row_of_line(out, 64)
    assert bow[20] > 0.3 and bow[125] < -0.3, bow
    np.testing.assert_array_equal(C.radial_distortion(img, 50), img)


def test_distortion_keeps_corners_in_frame(face):
    for f in (14, 400):
        out = C.radial_distortion(face, f)
        # the corner pixel maps onto itself, so there are no black borders
        np.testing.assert_allclose(out[0, 0].astype(int), face[0, 0].astype(int), atol=2)
        assert out[:, 0].mean() > 20 and out[0].mean() > 20


def test_perspective_strength_is_zero_at_50mm_and_falls_with_focal_length():
    s = [C.perspective_strength(f) for f in (8, 12.5, 20, 35, 50, 85, 125, 400)]
    assert s[0] == s[1] == pytest.approx(0.3)  # clipped: the camera is never nearer than 25 cm
    assert all(a > b for a, b in zip(s[1:], s[2:])) and s[4] == 0
    assert s[2] == pytest.approx(0.15) and s[6] == pytest.approx(-0.06)


def disc_radius(img: np.ndarray) -> float:
    return float(np.sqrt((img[..., 0] > 127).sum() / np.pi))


@pytest.mark.parametrize("f", [12.5, 20, 125, 400])
def test_perspective_magnifies_the_face_centre_by_its_formula(f):
    yy, xx = np.mgrid[:128, :128] + 0.5
    img = np.zeros((128, 128, 3), np.uint8)
    img[(yy - 64) ** 2 + (xx - 64) ** 2 <= 6 ** 2] = 255  # a small disc at the centre of the face
    expected = 6 / (1 - C.perspective_strength(f))  # the magnification near rho = 0
    assert disc_radius(C.perspective(img, f)) == pytest.approx(expected, rel=0.08)


def test_perspective_leaves_the_outline_and_background_alone(face):
    out = C.perspective(face, 20)
    yy, xx = (np.mgrid[:128, :128] + 0.5) / 128 - 0.5
    outside = (xx / 0.36) ** 2 + (yy / 0.44) ** 2 >= 1.0
    np.testing.assert_array_equal(out[outside], face[outside])
    assert np.abs(out[~outside].astype(int) - face[~outside]).mean() > 3  # the face itself changes
    np.testing.assert_array_equal(C.perspective(face, 50), face)


# ------------------------------------------------------------------------------------------------ JPEG, simulate
def test_jpeg_quality(face):
    err = [np.abs(C.jpeg(face, q).astype(int) - face).mean() for q in (95, 50, 10)]
    assert all(a < b for a, b in zip(err, err[1:])), err
    assert C.jpeg(face, 90).dtype == np.uint8
    with pytest.raises(ValueError):
        C.jpeg(face, 0)


def test_simulate_is_deterministic_and_accepts_mapping(face):
    tags = [2.8, 1 / 30, 24.0, 3200.0]
    a = C.simulate(face, tags, np.random.default_rng(3))
    b = C.simulate(face, dict(zip(C.TAGS, tags)), np.random.default_rng(3))
    c = C.simulate(face, tags, np.random.default_rng(4))
    assert a.shape == face.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    raw = C.simulate(face, tags, np.random.default_rng(3), jpeg_quality=None)
    assert not np.array_equal(raw, a)


def test_simulate_effects_follow_the_tags(face):
    def render(**kw):
        tags = {"aperture": 8.0, "exposure_time": 1 / 500, "focal_length": 50.0, "iso": 100.0, **kw}
        return C.simulate(face, tags, np.random.default_rng(0), jpeg_quality=None)

    base = render()
    # High ISO: noisier (more high-frequency energy); long exposure: brighter and blurrier.
    assert lap_var(render(iso=6400)) > 2 * lap_var(base)
    slow = render(exposure_time=1 / 15)
    assert slow.mean() > base.mean() + 10 and lap_var(slow) < 0.5 * lap_var(base)


@pytest.mark.parametrize("bad", [
    np.zeros((32, 32), np.uint8),  # grayscale
    np.zeros((32, 32, 4), np.uint8),  # RGBA
    np.zeros((32, 32, 3), np.float32),  # not uint8
    np.zeros((32, 32, 3), np.uint16),  # 16-bit
])
def test_simulate_rejects_bad_images(bad):
    with pytest.raises(ValueError):
        C.simulate(bad, [4.5, 0.005, 50, 400], np.random.default_rng(0))


def test_effect_sizes_follow_the_parameter_functions():
    sizes = C.effect_sizes({"aperture": 2.0, "exposure_time": 1 / 50, "focal_length": 125.0, "iso": 1600.0})
    assert sizes["brightness_gain"] == pytest.approx(2.0)
    assert sizes["motion_blur_px"] == pytest.approx(4.0)
    assert sizes["background_blur_sigma_px"] == pytest.approx(4.0)
    assert sizes["vignetting_corner_loss"] == pytest.approx(0.25)
    assert sizes["distortion_k1"] == pytest.approx(C.distortion_k1(125.0)) and sizes["distortion_k1"] > 0
    assert sizes["perspective_centre_magnification"] == pytest.approx(1 / 1.06)
    assert sizes["noise_std_mid_grey"] == pytest.approx(np.sqrt(1.6e-3 * 0.25 + 2e-6 * 256))


@pytest.mark.parametrize("h, w, c", [(128, 128, 3), (10, 12, 5), (6, 6, 4), (6, 6, 5), (5, 5, 7)])
def test_reflect_padding_matches_numpy(h, w, c):
    p = np.random.default_rng(0).random((3, h, w)).astype(np.float32)
    np.testing.assert_array_equal(C._pad_reflect(p, c), np.pad(p, ((0, 0), (c, c), (c, c)), mode="reflect"))


def test_small_images_survive_every_effect():
    tiny = np.random.default_rng(0).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    out = C.simulate(tiny, [1.4, 1.0, 14.0, 6400.0], np.random.default_rng(0))
    assert out.shape == tiny.shape


def test_simulated_note_says_simulated():
    assert "Simulated" in C.SIMULATED_NOTE and "real EXIF" in C.SIMULATED_NOTE
