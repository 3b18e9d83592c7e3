"""Tests of aigfd_lite.blades.categorical_camera (chapter 7): each simulated categorical setting has the documented,
measurable effect; rendering is deterministic and rejects bad input."""
from __future__ import annotations

import numpy as np
import pytest

from aigfd_lite.blades.tasks import task
from aigfd_lite.blades.categorical_camera import program_tags, render_categorical, sample_categorical


def _face():
    rng = np.random.default_rng(0)
    image = np.full((48, 48, 3), 90, np.uint8)
    image[12:36, 12:36] = 170  # a bright "face" in a darker frame
    return np.clip(image + rng.integers(-5, 6, image.shape), 0, 255).astype(np.uint8)


def _classes(**kw):
    base = dict(make=9, metering=1, mode=0, balance=0, program=2)  # other make, average, auto, auto, program AE
    base.update(kw)
    return np.array([base["make"], base["metering"], base["mode"], base["balance"], base["program"]])


def test_deterministic_and_uint8():
    a = render_categorical(_face(), _classes(balance=1, mode=1), np.random.default_rng(3))
    b = render_categorical(_face(), _classes(balance=1, mode=1), np.random.default_rng(3))
    assert a.dtype == np.uint8 and a.shape == (48, 48, 3) and np.array_equal(a, b)
    with pytest.raises(ValueError, match="uint8"):
        render_categorical(_face().astype(float), _classes(), np.random.default_rng(0))


def test_manual_white_balance_casts_colour_auto_neutralises():
    ratio = []
    for balance in (0, 1):
        out = render_categorical(_face(), _classes(balance=balance), np.random.default_rng(1)).astype(float)
        ratio.append(abs(np.log(out[..., 0].mean() / out[..., 2].mean())))
    assert ratio[0] < 0.03 < ratio[1]


def test_spot_metering_exposes_for_the_bright_centre():
    spot = task("metering_mode").classes.index("spot")
    average = render_categorical(_face(), _classes(metering=1), np.random.default_rng(0)).mean()
    on_face = render_categorical(_face(), _classes(metering=spot), np.random.default_rng(0)).mean()
    assert on_face < average  # the bright face reads as "too bright": the spot meter darkens the frame


def test_programs_choose_ordinal_settings_and_sampling_covers_classes():
    tags = np.array([8.0, 1 / 60, 50.0, 400.0])
    aperture_priority = task("exposure_program").classes.index("aperture priority")
    shutter_priority = task("exposure_program").classes.index("shutter priority")
    assert program_tags(tags, aperture_priority, np.random.default_rng(0))[0] <= 2.8
    assert program_tags(tags, shutter_priority, np.random.default_rng(0))[1] <= 1 / 500
    assert np.array_equal(program_tags(tags, 2, np.random.default_rng(0)), tags)
    draws = np.stack([sample_categorical(np.random.default_rng(i)) for i in range(400)])
    assert [len(set(draws[:, k])) for k in range(5)] == [10, 8, 3, 2, 6]
