"""Tests of aigfd_lite.blades (chapter 7): the 11 losses, configuration, a short run learning task weights, and
exact resume after a SIGKILL."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from aigfd_lite import resolve
from aigfd_lite.blades.training import LOSS_NAMES, BladesConfig, main, task_losses, train_blades
from conftest import FIXTURES, ROOT


FIXTURE = textwrap.dedent(f'''
    import sys
    sys.path.insert(0, {str(FIXTURES)!r})
    import numpy as np
    from tiny_pretext import PIECES, tiny_faces
    import torch
    from torch import nn
    from aigfd_lite.blades import build_blades_model
    from aigfd_lite.blades.data import BladesDataset

    def dataset(n=24):
        return BladesDataset(*tiny_faces(n), np.full((n, 5), -1), seed=5, input_size=16, **PIECES)

    def model():
        torch.manual_seed(0)
        backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 16))
        return build_blades_model(backbone, "learned", feature_dim=16, seed=0)
''')
exec(FIXTURE)


def tiny_config(**kw) -> BladesConfig:
    values = dict(profile="lite", device="cpu", batch_size=6, epochs=3, lr=1e-2, outer_lr=1e-2, num_workers=0,
                  input_size=16, feature_dim=16, checkpoint_every_steps=5, text_tower="learned",
                  ranking_variant="code")
    values.update(kw)
    return BladesConfig(**values)


def test_config_follows_blades_and_rejects_unknown_keys():
    full = BladesConfig.from_profile(resolve("full"))
    assert (full.batch_size, full.input_size, full.epochs, full.lr, full.outer_lr) == (48, 224, 20, 1e-5, 3e-4)
    assert full.backbone == "resnet50" and full.text_tower == "clip" and full.bilevel
    assert BladesConfig.from_profile(resolve("lite")).init == "chapter4"
    with pytest.raises(ValueError, match="unknown BLADES setting"):
        BladesConfig.from_profile(resolve("lite"), batchsize=3)


def test_task_losses_cover_eleven_tasks_and_skip_missing_labels():
    ds = dataset()
    batch = torch.utils.data.default_collate([ds[i] for i in range(8)])
    net = model()
    losses = task_losses(net(batch[0]), batch)
    assert losses.shape == (len(LOSS_NAMES),) == (11,)
    assert torch.isfinite(losses).all()
    batch[2][:] = -1  # no categorical label at all: those five terms are exact, graph-attached zeros
    losses = task_losses(net(batch[0]), batch)
    assert torch.all(losses[4:9] == 0)
    losses.sum().backward()


def test_killed_run_resumes_exactly(tmp_path):
    cfg = tiny_config()
    _, log_a = train_blades(cfg, tmp_path / "a", dataset(), model(), progress=False)
    assert len(log_a) == 12
    lam = log_a[[f"lambda_{n}" for n in LOSS_NAMES]].iloc[-1].to_numpy()
    assert np.any(lam != 1.0)  # the bi-level step moved the weights
    script = FIXTURE + textwrap.dedent(f'''
        from aigfd_lite.blades.training import BladesConfig, train_blades
        values = {tiny_config(stop_after_steps=7).to_json()!r}
        train_blades(BladesConfig(**dict(values, betas=tuple(values["betas"]))), {str(tmp_path / "b")!r},
                     dataset(), model(), progress=False)
    ''')
    killed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert killed.returncode == -9, killed.stderr
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=True)["step"] == 5
    _, log_b = train_blades(cfg, tmp_path / "b", dataset(), model(), progress=False)
    a = torch.load(tmp_path / "a" / "final.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "final.pt", weights_only=True)["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert list(log_b["step"]) == list(range(1, 13))
    cols = ["loss", "val_loss"] + [f"lambda_{n}" for n in LOSS_NAMES]
    np.testing.assert_array_equal(log_a[cols].to_numpy(), log_b[cols].to_numpy())


def test_equal_weights_run_keeps_lambdas_and_other_settings_are_refused(tmp_path):
    _, log = train_blades(tiny_config(bilevel=False, epochs=1), tmp_path / "eq", dataset(), model(),
                          progress=False)
    assert (log[[f"lambda_{n}" for n in LOSS_NAMES]].to_numpy() == 1.0).all()
    assert log["val_loss"].isna().all()
    with pytest.raises(ValueError, match="other settings"):
        train_blades(tiny_config(bilevel=False, epochs=1, lr=0.5), tmp_path / "eq", dataset(), model(),
                     progress=False)


def test_cli_rejects_unknown_settings(capsys):
    with pytest.raises(SystemExit):
        main(["--profile", "lite", "--set", "nonsense=1"])
    assert "unknown BLADES setting" in capsys.readouterr().err


def test_image_tower_uses_the_profiles_backbone(monkeypatch):
    import aigfd_lite.blades.training as training  # build_image_tower looks build_model up there
    from aigfd_lite.blades.training import build_image_tower

    calls = []

    def fake_build_model(init="random", feature_dim=768, tasks=(), seed=None, backbone="resnet50"):
        calls.append((init, backbone))
        return type("Net", (), {"backbone": f"{backbone}-tower"})()

    monkeypatch.setattr(training, "build_model", fake_build_model)
    assert build_image_tower(resolve("lite"), "random") == "mobilenet_v2-tower"
    assert build_image_tower(resolve("full"), "imagenet") == "resnet50-tower"
    assert calls == [("random", "mobilenet_v2"), ("imagenet", "resnet50")]


def test_blades_refuses_a_damaged_checkpoint_and_bad_settings_before_any_data(tmp_path, capsys, monkeypatch):
    from aigfd_lite.train.checkpoints import DamagedCheckpointError

    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "last.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DamagedCheckpointError, match="last.pt is damaged"):
        train_blades(tiny_config(), tmp_path / "r", dataset(), model(), progress=False)
    monkeypatch.setattr("aigfd_lite.blades.training.with_data_identity", lambda *a, **k: pytest.fail("data was read"))
    with pytest.raises(SystemExit) as exited:
        main(["--profile", "lite", "--set", "checkpoint_every_epochs=0"])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert exited.value.code == 2 and "error: checkpoint_every_epochs=0 is not allowed" in line
