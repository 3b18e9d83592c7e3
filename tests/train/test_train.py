"""Tests of aigfd_lite.train: configuration, Eq. 6 with task selection, checkpoints, exact resume after a kill."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from aigfd_lite import resolve
from aigfd_lite.train.loop import (TrainConfig, bootstrap_intervals, compute_losses, evaluate_pretext, fetch_or_train,
                              load_trained, main, train)
from conftest import FIXTURES, ROOT


# A tiny, fully synthetic training set and model, shared by this process and the subprocess that gets killed.
FIXTURE = textwrap.dedent(f'''
    import sys
    sys.path.insert(0, {str(FIXTURES)!r})
    import numpy as np
    from tiny_pretext import PIECES, tiny_faces
    import torch
    from torch import nn
    from aigfd_lite.models import ExifManipNet
    from aigfd_lite.pretext import PretextDataset

    def dataset(n=24):
        return PretextDataset(*tiny_faces(n), seed=5, input_size=16, **PIECES)

    def model():
        torch.manual_seed(0)  # no bias before BatchNorm, as in ResNet-50 (its gradient would be 0)
        backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 16))
        return ExifManipNet(feature_dim=16, backbone=backbone)
''')
exec(FIXTURE)  # defines dataset() and model() here too


def tiny_config(**kw) -> TrainConfig:
    values = dict(profile="lite", device="cpu", batch_size=6, epochs=3, lr=1e-2, num_workers=0, input_size=16,
                  feature_dim=16, checkpoint_every_steps=5)
    values.update(kw)
    return TrainConfig(**values)


def test_config_from_profile_follows_the_paper_and_rejects_unknown_keys():
    full = TrainConfig.from_profile(resolve("full"))
    assert (full.lr, full.weight_decay, full.betas, full.eps) == (1e-5, 1e-4, (0.9, 0.98), 1e-6)
    assert (full.batch_size, full.epochs, full.input_size, full.seed) == (256, 20, 224, 42)
    assert full.tasks == ("exif", "manipulation") and full.profile == "full"
    lite = TrainConfig.from_profile(resolve("lite"), epochs=1, tasks=["exif"])
    assert lite.epochs == 1 and lite.tasks == ("exif",) and lite.input_size == resolve("lite").input_size
    with pytest.raises(ValueError, match="unknown training setting"):
        TrainConfig.from_profile(resolve("lite"), learning_rate=1.0)
    with pytest.raises(ValueError, match="subset"):
        TrainConfig.from_profile(resolve("lite"), tasks=("jpeg",))


def test_loss_is_eq6_and_task_selection_zeroes_terms():
    torch.manual_seed(0)
    out = {k: torch.randn(5) for k in ("aperture", "exposure_time", "focal_length", "iso", "manipulation")}
    tags = torch.rand(5, 4)
    labels = torch.tensor([0, 1, 0, 1, 1])
    total, terms = compute_losses(out, tags, labels, tiny_config())
    assert total.item() == pytest.approx(sum(terms.values()), rel=1e-6)
    exif_only, _ = compute_losses(out, tags, labels, tiny_config(tasks=("exif",)))
    assert exif_only.item() == pytest.approx(total.item() - terms["loss_manipulation"], rel=1e-6)
    manip_only, _ = compute_losses(out, tags, labels, tiny_config(tasks=("manipulation",)))
    assert manip_only.item() == pytest.approx(terms["loss_manipulation"], rel=1e-6)


def _params(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_killed_run_resumes_exactly(tmp_path):
    """An uninterrupted run and a run SIGKILLed mid-epoch (after its step-5 checkpoint, at step 7) then rerun end
    with identical parameters, optimiser state and log."""
    from aigfd_lite.train.loop import train

    cfg = tiny_config()
    model_a, log_a = train(cfg, tmp_path / "a", dataset=dataset(), model=model(), progress=False)
    assert len(log_a) == 12 and (tmp_path / "a" / "final.pt").is_file()
    script = FIXTURE + textwrap.dedent(f'''
        from aigfd_lite.train import TrainConfig, train
        values = {tiny_config(stop_after_steps=7).to_json()!r}
        cfg = TrainConfig(**dict(values, betas=tuple(values["betas"]), tasks=tuple(values["tasks"])))
        train(cfg, {str(tmp_path / "b")!r}, dataset=dataset(), model=model(), progress=False)
    ''')
    killed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr  # SIGKILL: no cleanup ran
    state = torch.load(tmp_path / "b" / "last.pt", map_location="cpu", weights_only=True)
    assert state["step"] == 5 and not (tmp_path / "b" / "final.pt").exists()
    model_b, log_b = train(cfg, tmp_path / "b", dataset=dataset(), model=model(), progress=False)
    for key, value in _params(tmp_path / "a" / "final.pt").items():
        assert torch.equal(value, _params(tmp_path / "b" / "final.pt")[key]), key
    last_a = torch.load(tmp_path / "a" / "last.pt", map_location="cpu", weights_only=True)
    last_b = torch.load(tmp_path / "b" / "last.pt", map_location="cpu", weights_only=True)
    assert last_a["step"] == last_b["step"] == 12
    for k, v in last_a["optimizer"]["state"][0].items():
        assert torch.equal(v, last_b["optimizer"]["state"][0][k])
    assert last_a["scheduler"] == last_b["scheduler"]
    assert list(log_b["step"]) == list(range(1, 13))  # rows of the lost steps 6-7 were dropped and redone
    np.testing.assert_allclose(log_a["loss"], log_b["loss"], rtol=0, atol=0)


def test_training_lowers_the_loss_and_rejects_other_settings_in_a_run_dir(tmp_path):
    from aigfd_lite.train.loop import train

    cfg = tiny_config(epochs=8, lr=3e-2)
    _, log = train(cfg, tmp_path / "r", dataset=dataset(), model=model(), progress=False)
    first, last = log["loss"].iloc[:4].mean(), log["loss"].iloc[-4:].mean()
    assert last < first
    assert {"loss_aperture", "loss_iso", "loss_manipulation", "lr", "images_per_s"} <= set(log.columns)
    assert log["lr"].iloc[-1] < 1e-3 * cfg.lr  # cosine annealing reaches ~0 at the last step
    (tmp_path / "r" / "final.pt").unlink()
    with pytest.raises(ValueError, match="other settings"):
        train(tiny_config(epochs=8, lr=1e-3), tmp_path / "r", dataset=dataset(), model=model(), progress=False)
    with pytest.raises(ValueError, match="cannot fill one batch"):
        train(tiny_config(batch_size=100), tmp_path / "s", dataset=dataset(), model=model(), progress=False)


def test_evaluate_pretext_counts_pairs_and_accuracy():
    ds = dataset(n=10)
    ds.real_fraction = 1.0  # ranking is measured on real items
    result = evaluate_pretext(model(), ds, batch_size=4, progress=False)
    assert result["ranking_pairs_iso"] == 45  # all 10*9/2 pairs of distinct simulated ISO values
    assert 0.0 <= result["manipulation_balanced_accuracy"] <= 1.0 and result["n_items"] == 10
    assert np.isnan(result["manipulation_auc"])  # only real items: AUC undefined, reported as NaN
    assert result["scores"]["iso"].shape == (10,)
    # hand-made scores: ISO ranked perfectly, manipulation always "real" -> ranking 1.0, balanced accuracy 0.5
    result["scores"]["iso"] = result["tags"][:, 3].copy()
    result["scores"]["manipulation"] = np.full(10, -1.0)
    result["labels"] = np.array([0, 1] * 5)
    result["ranking_accuracy_iso"], result["manipulation_balanced_accuracy"] = 1.0, 0.5
    table = bootstrap_intervals(result, n_resamples=50).set_index("metric")
    assert table.loc["ranking_accuracy_iso", "low"] == table.loc["ranking_accuracy_iso", "high"] == 1.0
    assert table.loc["manipulation_balanced_accuracy", "high"] == 0.5


def test_fetch_or_train_and_load_trained_use_the_profile_checkpoint_dir(tmp_path, monkeypatch):
    from aigfd_lite.models.network import ExifManipNet

    monkeypatch.setenv("AIGFD_BUILD_DIR", str(tmp_path))
    cfg = resolve("lite")
    with pytest.raises(FileNotFoundError, match="fetch_or_train"):
        load_trained(cfg, "absent")
    run = tmp_path / "checkpoints" / "lite" / "ours"
    run.mkdir(parents=True)
    torch.manual_seed(1)
    stored = ExifManipNet(feature_dim=16, backbone=cfg.backbone)
    from aigfd_lite.train.loop import with_data_identity

    stored_cfg = with_data_identity(cfg, TrainConfig.from_profile(cfg, feature_dim=16))  # as train() stores it
    torch.save({"config": stored_cfg.to_json(), "model": stored.state_dict()}, run / "final.pt")
    (run / "log.csv").write_text("step,loss\n1,2.0\n")
    calls = []
    monkeypatch.setattr("aigfd_lite.train.loop.train", lambda *a, **k: calls.append(a) or (None, None))
    model, log = fetch_or_train(cfg, "ours", feature_dim=16)  # same settings: loaded, not trained
    assert calls == [] and list(log["loss"]) == [2.0] and not model.training
    assert torch.equal(model.heads["iso"].weight, stored.heads["iso"].weight)
    # settings changed: the old run is moved aside (never deleted) and training starts
    fetch_or_train(cfg, "ours", feature_dim=16, epochs=1)
    assert len(calls) == 1 and not run.exists()
    assert len(list(run.parent.glob("ours.stale-*"))) == 1


def test_cli_rejects_unknown_settings(capsys):
    with pytest.raises(SystemExit):
        main(["--profile", "lite", "--set", "learning_rate=1"])
    assert "unknown training setting" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--profile", "lite", "--set", "oops"])


def test_cli_max_steps_reaches_the_config(monkeypatch, capsys):
    seen = {}

    def fake_fetch_or_train(cfg, run_name, tasks, progress, **overrides):
        seen.update(overrides, run_name=run_name)
        import pandas as pd

        return None, pd.DataFrame({"step": [5], "loss": [1.0]})

    monkeypatch.setattr("aigfd_lite.train.loop.fetch_or_train", fake_fetch_or_train)
    main(["--profile", "lite", "--run-name", "smoke", "--max-steps", "5", "--set", "batchnorm=local"])
    assert seen == {"max_steps": 5, "batchnorm": "local", "run_name": "smoke"}
    assert '"step": 5' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--profile", "lite", "--max-steps", "0"])
    assert "at least 1" in capsys.readouterr().err


def test_a_mobilenet_run_is_trained_and_reloaded_with_its_backbone(tmp_path, monkeypatch):
    from aigfd_lite.models.network import prepare_batch
    from aigfd_lite.train.loop import checkpoint_dir, train

    monkeypatch.setenv("AIGFD_BUILD_DIR", str(tmp_path))
    cfg = tiny_config(backbone="mobilenet_v2", epochs=1, input_size=32)
    data = dataset()
    data.input_size = 32
    trained, _ = train(cfg, checkpoint_dir("lite", "mnv2"), dataset=data, progress=False)
    assert trained.backbone_name == "mobilenet_v2"
    loaded = load_trained(cfg, "mnv2")
    assert loaded.backbone_name == "mobilenet_v2" and loaded.train_config["backbone"] == "mobilenet_v2"
    batch = prepare_batch(torch.stack([data[i][0] for i in range(4)]), torch.device("cpu"), 32)
    with torch.no_grad():
        assert torch.allclose(loaded(batch)["manipulation"], trained(batch)["manipulation"])


# Probed bad inputs of the command line: each exits with status 2 and one `error:` line naming the setting, its value
# and what is allowed, before any data is read (with_data_identity and train would read it: both fail the test).
BAD_CLI = [["--set", "checkpoint_every_epochs=0"], ["--set", "lr=abc"], ["--set", "epochs=x"],
           ["--set", "batch_size=0"], ["--set", "input_size=0"], ["--set", "epochs=-1"], ["--set", "device=cuda"],
           ["--set", "tasks=jpeg"], ["--tasks", "exif,jpeg"], ["--profile", "huge"]]


@pytest.mark.parametrize("args", BAD_CLI, ids=[a[-1] for a in BAD_CLI])
def test_cli_refuses_bad_settings_with_one_line_before_any_data(args, monkeypatch, capsys, tmp_path):
    def no_data(*a, **k):
        raise AssertionError("data was read before the settings were checked")

    monkeypatch.setenv("AIGFD_BUILD_DIR", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # device=cuda: a machine without a GPU
    monkeypatch.setattr("aigfd_lite.train.loop.with_data_identity", no_data)
    monkeypatch.setattr("aigfd_lite.train.loop.train", no_data)
    with pytest.raises(SystemExit) as exited:
        main(["--profile", "lite", "--no-progress", *args])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert "error: " in line and "Traceback" not in err
    key, _, value = args[-1].partition("=")
    if args[0] == "--set":
        assert f"{key}=" in line and value in line
    else:
        assert args[-1].split(",")[-1] in line  # the offending task, or the unknown profile
    assert not list(tmp_path.rglob("*.pt"))


def test_cli_tasks_by_option_or_by_set_but_not_both(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr("aigfd_lite.train.loop.fetch_or_train", lambda cfg, run_name, tasks, progress, **overrides:
                        seen.append((tasks, overrides)) or (None, __import__("pandas").DataFrame()))
    main(["--profile", "lite", "--set", "tasks=exif"])
    main(["--profile", "lite", "--set", "tasks=('manipulation',)", "--set", "seed=3"])
    main(["--profile", "lite"])
    assert seen == [(("exif",), {}), (("manipulation",), {"seed": 3}), (("exif", "manipulation"), {})]
    with pytest.raises(SystemExit) as exited:
        main(["--profile", "lite", "--tasks", "exif", "--set", "tasks=exif"])
    assert exited.value.code == 2 and "not both" in capsys.readouterr().err


def test_cli_reports_a_damaged_checkpoint_without_touching_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("AIGFD_BUILD_DIR", str(tmp_path))
    monkeypatch.setattr("aigfd_lite.train.loop.with_data_identity", lambda cfg, run_cfg, main=True: run_cfg)
    run = tmp_path / "checkpoints" / "lite" / "ours"
    run.mkdir(parents=True)
    (run / "last.pt").write_bytes(b"\x80\x02 not a checkpoint" * 10)
    with pytest.raises(SystemExit) as exited:
        main(["--profile", "lite", "--no-progress"])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert exited.value.code == 2 and f"{run / 'last.pt'} is damaged" in line and "move it aside" in line
    assert "weights_only" not in line and (run / "last.pt").read_bytes().startswith(b"\x80\x02 not")


def test_a_garbage_log_is_moved_aside_on_resume_and_other_settings_are_refused(tmp_path):
    from aigfd_lite.train.loop import train

    run = tmp_path / "r"
    train(tiny_config(max_steps=5), run, dataset=dataset(), model=model(), progress=False)  # stops at step 5
    garbage = b"\x00\x01\x02 this is not the log \xff\n" * 3
    (run / "log.csv").write_bytes(garbage)
    with pytest.warns(RuntimeWarning, match=r"could not be parsed.*moved its 3 line\(s\)"):
        _, log = train(tiny_config(), run, dataset=dataset(), model=model(), progress=False)
    [aside] = run.glob("log.csv.damaged-*")
    assert aside.read_bytes() == garbage  # nothing lost: the old log is kept as it was
    assert list(log["step"]) == list(range(6, 13)) and (run / "final.pt").is_file()
    with pytest.raises(ValueError, match=r"other settings \{'seed': \(42, 7\)\}"):  # resuming another seed: refused
        train(tiny_config(seed=7), run, dataset=dataset(), model=model(), progress=False)


def test_a_second_trainer_of_one_run_folder_is_refused(tmp_path):
    from aigfd_lite.train.loop import RunInUseError, train
    from test_run_lock import hold_in_subprocess

    holder = hold_in_subprocess(tmp_path / "r")  # another trainer of this run, still alive
    try:
        with pytest.raises(RunInUseError, match=f"pid {holder.pid}"):
            train(tiny_config(), tmp_path / "r", dataset=dataset(), model=model(), progress=False)
    finally:
        holder.stdin.close()
        holder.wait()
    assert not (tmp_path / "r" / "last.pt").exists()  # it wrote nothing


class _Built(Exception):
    pass


def test_a_runs_identity_and_its_corpus_come_from_one_profile(tmp_path, monkeypatch):
    """A non-default face size names the corpus the run trains on, not the profile's default one."""
    monkeypatch.setenv("AIGFD_BUILD_DIR", str(tmp_path))
    monkeypatch.delenv("AIGFD_STORE", raising=False)
    named, built = [], []
    monkeypatch.setattr("aigfd_lite.train.runs.corpus_key", lambda cfg: named.append(cfg.face_size) or
                        f"face{cfg.face_size}")

    def build_corpus(cfg, *a, **k):  # the expensive build: record what it was asked for, then stop
        built.append(cfg.face_size)
        raise _Built

    monkeypatch.setattr("aigfd_lite.pretext.build.build_corpus", build_corpus)  # where the training data is built
    cfg = resolve("lite", face_size=96, device="cpu")
    with pytest.raises(_Built):
        fetch_or_train(cfg, "face96", feature_dim=16, epochs=1, batch_size=4)
    assert built == [96] and set(named) == {96}
    # train() given a run named by the 96 px corpus but no profile: refused, not trained on the default corpus
    from aigfd_lite.train.runs import with_data_identity

    tcfg = with_data_identity(cfg, TrainConfig.from_profile(cfg, feature_dim=16, epochs=1, batch_size=4))
    assert "face96" in tcfg.data_id
    with pytest.raises(ValueError, match="names another corpus"):
        train(tcfg, tmp_path / "r", progress=False)
    assert built == [96]
    with pytest.raises(_Built):
        train(tcfg, tmp_path / "r", progress=False, profile=cfg)
    assert built == [96, 96]
