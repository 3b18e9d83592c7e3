"""Tests of aigfd_lite.long_runs: the estimated GPU time before a run, and the explicit parameter a long one needs."""
from __future__ import annotations

import pytest
from test_runs import spellings, store_finished_run  # noqa: F401 (a fixture and a helper)

from aigfd_lite import resolve
from aigfd_lite.blades.training import BladesConfig
from aigfd_lite.long_runs import LONG_RUN_MINUTES, LongRunNotStarted, confirm_training, estimate_gpu_minutes
from aigfd_lite.train.runs import TrainConfig


def test_estimate_scales_with_faces_epochs_and_pixels():
    full = TrainConfig()  # the paper's: ResNet-50, 224 px, batch 256, 20 epochs
    assert estimate_gpu_minutes(200_000, full) == pytest.approx(781 * 256 * 20 / 250 / 60)
    assert estimate_gpu_minutes(200_000, TrainConfig(input_size=112)) == pytest.approx(
        estimate_gpu_minutes(200_000, full) / 4)
    bilevel = BladesConfig.from_profile(resolve("full"))  # BLADES' batch 48, 20 epochs
    assert estimate_gpu_minutes(48_000, bilevel) == pytest.approx(1000 * 48 * 20 * 2 / 250 / 60)


def test_a_long_run_needs_the_parameter_and_a_finished_one_does_not(spellings, monkeypatch, capsys):
    cfg = resolve("full", data_root=spellings["plain"], epochs=100_000, batch_size=2)  # 3 faces x 1e5 epochs
    with pytest.raises(LongRunNotStarted, match=r"start_training = True"):
        confirm_training(cfg, start=False)
    assert "estimated GPU time" in capsys.readouterr().out
    table = confirm_training(cfg, start=True)
    assert table.iloc[0, -1] > LONG_RUN_MINUTES
    store_finished_run(cfg)  # the same settings, finished: nothing to train, nothing to confirm
    capsys.readouterr()
    table = confirm_training(cfg, start=False)
    assert table.iloc[0]["stored"] == "finished" and table.iloc[0, -1] == 0
    assert capsys.readouterr().out == "every run is already trained (ours): nothing to train\n"  # no table
    with pytest.raises(LongRunNotStarted, match="blades"):  # a BLADES run of its own settings is not finished
        confirm_training(cfg, {"blades": dict(epochs=100_000, batch_size=1)}, kind="blades", start=False)


def test_lite_runs_never_trip_the_guard():
    table = confirm_training(resolve("lite"), {"ours": {}, "ablation_exif": dict(tasks=("exif",))}, start=False)
    assert (table.iloc[:, -1] < 1).all()


def test_training_hours_hand_computed():
    from aigfd_lite.long_runs import PAPER_FDF_FACES, estimate_training_hours

    assert PAPER_FDF_FACES == 200_000  # the paper's FDF faces (Sec. III-A)
    assert estimate_training_hours(250.0) == pytest.approx(200_000 * 20 / 250 / 3600)  # 4.44 h on one T4
    assert estimate_training_hours(1500.0, n_gpus=8, efficiency=0.9) == pytest.approx(4e6 / 10_800 / 3600)
    assert estimate_training_hours(250.0, n_faces=130_000, epochs=1) == pytest.approx(130_000 / 250 / 3600)
    with pytest.raises(ValueError):
        estimate_training_hours(250.0, efficiency=0.0)
