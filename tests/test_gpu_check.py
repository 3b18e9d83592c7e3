"""aigfd_lite.gpu_check's pieces, and the smoke run of tools/gpu_check.py that `make gpu-check-smoke` writes."""
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from aigfd_lite import gpu_check
from aigfd_lite.fdf.landmarks import USED_POINTS
from aigfd_lite.manipulate import LABELS, check_landmarks, make_training_image
from conftest import ROOT

SMOKE = ROOT / "_build" / "gpu_check_smoke.json"
sys.path.insert(0, str(ROOT / "tools"))
import gpu_check as tool  # noqa: E402 (tools/gpu_check.py)


def test_template_face_places_every_manipulation():
    points = gpu_check._template_68() * 128 - 0.5
    check_landmarks(points, (128, 128, 3), USED_POINTS)  # raises if a used point left the image
    assert points[36, 0] < points[39, 0] < points[42, 0] < points[45, 0]  # eye corners left to right
    assert points[48, 0] < points[54, 0] and points[51, 1] < points[57, 1]  # mouth corners, upper above lower lip
    face = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    for kind in LABELS:
        out = make_training_image(face, points, kind, np.random.default_rng(1), symmetric=True)
        assert out.dtype == np.uint8 and out.shape[2] == 3


def test_synthetic_features_are_seeded_mixtures():
    a, b = gpu_check.synthetic_features(300, 12, 3, seed=1), gpu_check.synthetic_features(300, 12, 3, seed=1)
    assert a.shape == (300, 12) and a.dtype == np.float32 and np.array_equal(a, b)
    assert not np.array_equal(a, gpu_check.synthetic_features(300, 12, 3, seed=2))


def test_synthetic_pretext_items_depend_on_epoch_and_index():
    data = gpu_check.SyntheticPretext(6, 16, seed=3)
    first = data[2][0].clone()
    assert torch.equal(first, data[2][0]) and not torch.equal(first, data[3][0])
    data.set_epoch(1)
    assert not torch.equal(first, data[2][0])
    image, tags, label, kind = data[0]
    assert image.shape == (16, 16, 3) and image.dtype == torch.uint8 and tags.shape == (4,) and label == kind


def test_worker_rejects_an_unknown_phase(tmp_path):
    with pytest.raises(ValueError, match="unknown phase 'resume'"):
        gpu_check.ddp_worker(tmp_path, {}, "resume")


def test_tool_refuses_a_cpu_measurement_and_a_missing_out(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        tool.main([])
    assert exit_.value.code == 2 and "--out FILE is required" in capsys.readouterr().err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_:
        tool.main(["--out", "x.json"])
    assert exit_.value.code == 2 and "no CUDA device here" in capsys.readouterr().err


def test_budgets_fit_six_minutes():
    assert tool.TOTAL_S <= 360 and set(tool.BUDGET_S) == set(tool.PARTS)
    assert all(b > 0 for b in tool.BUDGET_S.values())


def _numbers(value):
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return []


@pytest.mark.built
def test_smoke_run_is_complete_and_sane():
    """`make gpu-check-smoke` (part of `make test`) ran every part on this CPU, and each measured something."""
    report = json.loads(SMOKE.read_text())
    assert report["smoke"] is True and report["device"]["type"] == "cpu" and report["missing_modules"] == []
    assert report["commit"] and report["versions"]["torch"] == torch.__version__
    assert list(report["parts"]) == list(tool.BUDGET_S)
    for name, part in report["parts"].items():
        assert part["status"] == "ok", (name, part.get("error"))
        assert part["results"] and 0 < part["wall_s"] <= part["budget_s"] + 5
    parts = {name: part["results"] for name, part in report["parts"].items()}
    for row in [*parts["a_training"].values(), *parts["b_accumulation"].values()][1:]:
        assert row["images_per_s"] > 0 and row["estimate_bytes"] > 0 and row["peak_allocated_bytes"] is None
        assert math.isfinite(row["loss"]) and row["steps_timed"] >= 1
    assert {r["dtype"] for k, r in parts["a_training"].items() if k != "estimate"} == {"bfloat16", "float16"}
    assert [r["micro_batches"] for r in parts["b_accumulation"].values()] == [2, 4]
    assert parts["c_pipeline"]["loader"]["images"] > 0 and len(parts["c_pipeline"]["loader"]["kinds_drawn"]) > 1
    assert parts["d_features_gmm"]["features"]["dim"] == 768 and parts["d_features_gmm"]["gmm"]["finite_scores"]
    assert parts["e_torchrun"]["ddp_steps"]["backend"] == "gloo" and parts["e_torchrun"]["ddp_steps"]["finite"]
    assert parts["e_torchrun"]["kill_and_resume"]["killed_at_step"] == 3
    assert parts["e_torchrun"]["kill_and_resume"]["bit_exact"] is True  # on a CPU with one thread: exact
    assert 0 <= parts["f_chapters"]["ours"]["mean_auc"] <= 1 and parts["f_chapters"]["ours"]["steps"] >= 1
    assert all(n >= 0 for n in _numbers(parts)) and report["pipeline_over_training"] > 0
