"""Tests of aigfd_lite.blades.tasks (chapter 7): one table for prompts and labels, EXIF values to classes,
tertile levels."""
from __future__ import annotations

import numpy as np
import pytest

from aigfd_lite.blades.tasks import (CATEGORICAL_TASKS, TASKS, category_index, categorical_targets, parts_targets,
                                     prompt_slices, prompts, task, tertile_edges, to_levels)
from aigfd_lite.exif.tags import CATEGORY_NAMES


def test_blades_task_sizes():
    sizes = {t.name: t.n_targets for t in TASKS}
    assert sizes == {"aperture": 3, "exposure_time": 3, "focal_length": 3, "iso": 3, "make": 10,
                     "metering_mode": 8, "exposure_mode": 3, "white_balance": 2, "exposure_program": 6,
                     "manipulation": 2, "parts": 2}
    assert len(prompts()) == sum(t.n_outputs for t in TASKS) == len(set(prompts()))  # no duplicate prompt
    for t in TASKS:
        assert len(t.classes) == t.n_targets
        assert prompt_slices()[t.name].stop - prompt_slices()[t.name].start == len(t.prompts)


def test_every_exif_code_maps_into_its_tasks_classes():
    for name in CATEGORICAL_TASKS[1:]:
        for code in CATEGORY_NAMES[name]:
            k = category_index(name, code)
            assert 0 <= k < task(name).n_targets, (name, code)
    assert category_index("exposure_program", 7) == task("exposure_program").classes.index("scene mode")
    assert category_index("metering_mode", 99) == -1 and category_index("white_balance", None) == -1


def test_makes():
    assert category_index("make", "NIKON CORPORATION") == task("make").classes.index("nikon")
    assert category_index("make", "SONY") == task("make").classes.index("sony")
    assert category_index("make", "Leica Camera AG") == task("make").classes.index("other")
    assert category_index("make", "  ") == -1
    got = categorical_targets({"make": "Canon", "metering_mode": 5, "white_balance": 1})
    assert got.tolist() == [0, 5, -1, 1, -1]


def test_tertile_levels_hand_computed():
    tags = np.array([[1.0, np.nan, 5, 100], [2, 0.01, 5, 200], [3, 0.02, 5, 400], [4, 0.03, 5, 800],
                     [5, 0.04, 5, 1600], [6, 0.05, 5, np.nan]])
    edges = tertile_edges(tags)
    np.testing.assert_allclose(edges[0], [np.quantile([1, 2, 3, 4, 5, 6], 1 / 3), np.quantile([1, 2, 3, 4, 5, 6], 2 / 3)])
    levels = to_levels(tags, edges)
    assert levels[:, 0].tolist() == [0, 0, 1, 1, 2, 2]
    assert levels[0, 1] == -1 and levels[5, 3] == -1
    assert set(levels[:, 2]) == {2}  # all equal: at the upper edge, one level
    assert to_levels(tags, np.full((4, 2), np.nan)).max() == -1


def test_parts_targets():
    assert parts_targets("eye_flip").tolist() == [1, 0]
    assert parts_targets("mouth_flip_v").tolist() == [0, 1]
    assert parts_targets("warp").tolist() == [0, 0]
    with pytest.raises(ValueError, match="unknown manipulation kind"):
        parts_targets("nose_flip")
