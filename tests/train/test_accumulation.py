"""Tests of aigfd_lite.train.accumulation: two-pass accumulation equals one big batch (float64, no BatchNorm in training
mode), under torchrun too; BatchNorm per micro-batch differs, measurably and boundedly; "auto" resolution; resume."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from aigfd_lite.train.accumulation import resolve_accumulation
from aigfd_lite.runtime.distributed import Precision
from aigfd_lite.models.network import ExifManipNet
from aigfd_lite.train.loop import train_step
from test_train import FIXTURE, dataset, model, tiny_config
from conftest import ROOT, TEST_FOLDERS



def plain_net(batchnorm: bool = False) -> ExifManipNet:
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 8, 3, padding=1, bias=not batchnorm)]
    layers += [nn.BatchNorm2d(8)] if batchnorm else []
    layers += [nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 16)]
    return ExifManipNet(feature_dim=16, backbone=nn.Sequential(*layers)).double()


def batch(n: int = 8, dtype=torch.float64):
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(n, 3, 12, 12, generator=generator, dtype=dtype)
    tags = torch.rand(n, 4, generator=generator) * torch.tensor([6.0, 0.02, 180.0, 1500.0])
    return images, tags, torch.randint(0, 2, (n,), generator=generator)


def gradients(net: nn.Module, steps: int, scaler: torch.amp.GradScaler | None = None,
              precision: Precision = Precision(), data=None) -> tuple[float, dict[str, torch.Tensor]]:
    """The loss and the (unscaled) gradients of one train_step; SGD with lr 0 leaves the weights as they were."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0)
    scaler = scaler or torch.amp.GradScaler("cpu", enabled=False)
    loss, terms = train_step(net, *(data or batch()), tiny_config(accumulation_steps=steps), precision,
                             optimizer, scaler)
    assert loss.item() == pytest.approx(sum(terms.values()), rel=1e-6)
    return float(loss.detach()), {k: p.grad.clone() for k, p in net.named_parameters()}


def max_difference(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_accumulation_gives_the_full_batch_gradient_without_batchnorm():
    """Eq. 6 over all 8 images: 1, 2 and 4 micro-batches give the same loss and gradients to float64 rounding,
    also with BatchNorm in eval mode; 4 micro-batches of a 6-image batch are refused."""
    loss1, one = gradients(plain_net(), 1)
    assert max(float(g.abs().max()) for g in one.values()) > 1e-3  # a real gradient
    for steps in (2, 4, 8):
        loss, many = gradients(plain_net(), steps)
        assert loss == pytest.approx(loss1, rel=1e-13, abs=1e-15)
        assert max_difference(one, many) < 1e-12, steps
    frozen = [plain_net(batchnorm=True) for _ in range(2)]
    for net in frozen:
        net.backbone[1].eval()  # running statistics: each image normalised on its own
    assert max_difference(gradients(frozen[0], 1)[1], gradients(frozen[1], 4)[1]) < 1e-12
    with pytest.raises(ValueError, match="equal micro-batches"):
        gradients(plain_net(), 4, data=batch(6))


def test_batchnorm_in_training_mode_differs_and_updates_its_statistics_once_per_micro_batch():
    nets = {steps: plain_net(batchnorm=True) for steps in (1, 2, 4)}
    grads = {steps: gradients(net, steps)[1] for steps, net in nets.items()}
    scale = max(float(g.abs().max()) for g in grads[1].values())
    for steps in (2, 4):
        relative = max_difference(grads[1], grads[steps]) / scale
        print(f"\nBatchNorm over micro-batches of {8 // steps} instead of 8: largest gradient difference "
              f"{relative:.2e} of the largest gradient")
        assert 1e-6 < relative < 1.0
    # the running statistics are those of one BatchNorm update per micro-batch, as in plain accumulation
    reference = plain_net(batchnorm=True)
    images = batch()[0]
    with torch.no_grad():
        for part in images.chunk(4):
            reference(part)
    bn, expected = nets[4].backbone[1], reference.backbone[1]
    assert int(bn.num_batches_tracked) == 4
    torch.testing.assert_close(bn.running_mean, expected.running_mean, rtol=0, atol=1e-14)
    torch.testing.assert_close(bn.running_var, expected.running_var, rtol=0, atol=1e-14)


def test_grad_scaler_and_autocast_work_with_accumulation():
    """A GradScaler (power-of-two scale: exact) unscales the two-pass gradient back to the unscaled one; bf16
    autocast on a float32 net: 2 and 4 micro-batches are as far from fp32 as 1 micro-batch is (bf16's rounding)."""
    _, plain = gradients(plain_net(), 1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12)
    _, scaled = gradients(plain_net(), 2, scaler=scaler)
    assert max_difference(plain, scaled) < 1e-12 and scaler.get_scale() == 2.0 ** 12
    data = tuple(t.float() if t.is_floating_point() else t for t in batch())
    _, exact = gradients(plain_net().float(), 1, data=data)
    scale = max(float(g.abs().max()) for g in exact.values())
    errors = {steps: max_difference(exact, gradients(plain_net().float(), steps, data=data,
                                                     precision=Precision(torch.bfloat16))[1]) / scale
              for steps in (1, 2, 4)}
    print(f"\nbf16 autocast against fp32, largest gradient error / largest gradient: {errors}")
    assert errors[1] > 1e-3 and max(errors.values()) < 1.5 * errors[1]  # bf16's own error, not accumulation's


def test_auto_resolution_picks_the_fewest_steps_that_fit():
    gib = 2 ** 30
    estimate = {"fixed_bytes": 1.0 * gib, "per_image_bytes": 0.05 * gib}  # 256 images: 13.8 GiB
    auto = tiny_config(batch_size=256, accumulation_steps="auto")
    assert resolve_accumulation(auto, torch.device("cpu"), 1) == 1  # no GPU: nothing to fit
    # 16 GiB less 1 GiB of context, / 1.1 for fragmentation = 13.6 GiB: 128 images fit, 256 do not
    assert resolve_accumulation(auto, torch.device("cuda"), 1, 16 * gib, estimate) == 2
    assert resolve_accumulation(auto, torch.device("cuda"), 2, 16 * gib, estimate) == 1  # 128 per process
    assert resolve_accumulation(auto, torch.device("cuda"), 1, 40 * gib, estimate) == 1
    assert resolve_accumulation(auto, torch.device("cuda"), 1, 4 * gib, estimate) == 8  # 32 images: 2.6 GiB
    with pytest.raises(ValueError, match="not even one image"):
        resolve_accumulation(auto, torch.device("cuda"), 1, 2 * gib, estimate)
    assert resolve_accumulation(tiny_config(accumulation_steps=3), torch.device("cpu"), 1) == 3
    for bad in (0, 4, "two", True):
        with pytest.raises(ValueError, match="accumulation_steps"):
            resolve_accumulation(tiny_config(accumulation_steps=bad), torch.device("cpu"), 1)


def test_accumulation_is_part_of_a_runs_identity():
    from aigfd_lite.train.runs import config_difference

    stored = tiny_config().to_json()
    del stored["accumulation_steps"]  # a checkpoint written before the setting existed: it trained with 1
    assert config_difference(stored, tiny_config(accumulation_steps=1).to_json()) == {}
    assert config_difference(stored, tiny_config(accumulation_steps=2).to_json()) == {"accumulation_steps": (1, 2)}


def test_killed_run_with_accumulation_resumes_exactly(tmp_path):
    """The SIGKILL pattern of tests/train/test_train.py, with 2 micro-batches of 3 and BatchNorm in training mode."""
    from aigfd_lite.train.loop import train

    cfg = tiny_config(accumulation_steps=2)
    _, log_a = train(cfg, tmp_path / "a", dataset=dataset(), model=model(), progress=False)
    script = FIXTURE + textwrap.dedent(f'''
        from aigfd_lite.train import TrainConfig, train
        values = {tiny_config(accumulation_steps=2, stop_after_steps=7).to_json()!r}
        cfg = TrainConfig(**dict(values, betas=tuple(values["betas"]), tasks=tuple(values["tasks"])))
        train(cfg, {str(tmp_path / "b")!r}, dataset=dataset(), model=model(), progress=False)
    ''')
    killed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    _, log_b = train(cfg, tmp_path / "b", dataset=dataset(), model=model(), progress=False)
    a, b = (torch.load(tmp_path / r / "last.pt", weights_only=True) for r in ("a", "b"))
    assert a["step"] == b["step"] == 12 and a["config"]["accumulation_steps"] == 2
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    np.testing.assert_array_equal(log_a["loss"], log_b["loss"])
    _, log_1 = train(tiny_config(), tmp_path / "c", dataset=dataset(), model=model(), progress=False)
    assert not np.array_equal(log_1["loss"], log_a["loss"])  # per-micro-batch BatchNorm: another run


WORKER = textwrap.dedent('''
    import sys, torch
    from aigfd_lite.runtime import distributed
    from aigfd_lite.train.loop import train_step
    from test_accumulation import batch, plain_net, tiny_config
    procs, _ = distributed.init_from_env("cpu")
    images, tags, labels = batch()
    part = slice(4 * procs.rank, 4 * procs.rank + 4)
    module, net = distributed.prepare(plain_net(), "sync", procs, torch.device("cpu"))
    optimizer = torch.optim.SGD(module.parameters(), lr=0.0)
    loss, _ = train_step(net, images[part], tags[part], labels[part], tiny_config(accumulation_steps=2),
                         distributed.Precision(), optimizer, torch.amp.GradScaler("cpu", enabled=False))
    if procs.rank == 0:
        torch.save({"loss": loss.detach(), **{k: p.grad for k, p in module.named_parameters()}}, sys.argv[1])
    distributed.shutdown()
''')


def test_two_ranks_with_accumulation_equal_one_process(tmp_path):
    """2 gloo processes x 2 micro-batches of 2 against 1 process x 1 batch of 8 (float64, no BatchNorm)."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    paths = [str(ROOT), str(ROOT / "tests"), *map(str, TEST_FOLDERS)]  # the package, conftest, the tests' helpers
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), OMP_NUM_THREADS="1")
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), "--max_restarts", "0", str(script), str(tmp_path / "grads.pt")]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    ddp = torch.load(tmp_path / "grads.pt", weights_only=True)
    loss, one = gradients(plain_net(), 1)
    assert float(ddp.pop("loss")) == pytest.approx(loss, rel=1e-13)
    assert max_difference(one, ddp) < 1e-12
