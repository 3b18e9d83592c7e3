"""Tests of aigfd_lite.runtime.distributed and of the trainer under torchrun (CPU, gloo, 2 processes on 127.0.0.1).

Two torchrun launches of ``tests/train/ddp_worker.py`` (module fixture ``torchrun_runs``) serve every multi-process
test: one optimiser step of 2 ranks x B/2 against one process x B, per-rank file writes, sharded features, the barrier
around fetch_or_train's run-folder move, and a run SIGKILLed under torchrun then resumed.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from aigfd_lite import resolve
from aigfd_lite.runtime import distributed
from aigfd_lite.runtime.distributed import Processes, ShardedBatchSampler, choose_precision
from aigfd_lite.models.features import extract_features
from aigfd_lite.models.network import prepare_batch
from aigfd_lite.train.loop import TrainConfig, global_batch_loss, train
from test_train import dataset, model, tiny_config
from conftest import ROOT, TEST_FOLDERS

WORKER = ROOT / "tests" / "train" / "ddp_worker.py"


@pytest.mark.parametrize("capability, dtype, scaler", [
    ((7, 5), torch.float16, True),  # T4: torch calls bf16 "supported", but it is emulated
    ((7, 0), torch.float16, True),  # V100
    ((8, 0), torch.bfloat16, False),  # A100
    ((8, 9), torch.bfloat16, False),  # L4
    ((9, 0), torch.bfloat16, False),  # H100
])
def test_precision_is_chosen_by_compute_capability(monkeypatch, capability, dtype, scaler):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    chosen = choose_precision("cuda:0")
    assert (chosen.dtype, chosen.grad_scaler) == (dtype, scaler)
    assert choose_precision("cuda", enabled=False).dtype == torch.float32
    assert choose_precision("cpu") == distributed.Precision(torch.float32, False)


def test_shards_rebuild_the_single_process_batches_and_resume_mid_epoch():
    single = list(ShardedBatchSampler(50, 8, seed=4, epoch=2))
    assert len(single) == 6 and len({i for b in single for i in b}) == 48
    for world in (2, 4):
        ranks = [list(ShardedBatchSampler(50, 8, 4, 2, rank=r, world_size=world)) for r in range(world)]
        assert [sum((ranks[r][k] for r in range(world)), []) for k in range(6)] == single
    resumed = list(ShardedBatchSampler(50, 8, 4, 2, start_step=4, rank=1, world_size=2))
    assert resumed == [b[4:] for b in single[4:]] and len(ShardedBatchSampler(50, 8, 4, 2, 4, 1, 2)) == 2
    with pytest.raises(ValueError, match="divide evenly"):
        ShardedBatchSampler(50, 8, 4, 2, world_size=3)
    assert [len(Processes(r, 3).shard(11)) for r in range(3)] == [4, 3, 4]
    assert [Processes(r, 3).shard(11).start for r in range(3)] == [0, 4, 7]


def test_single_process_path_is_unchanged_and_records_world_size(tmp_path):
    """No process group: the gathers are identities and BatchNorm is not converted; --max-steps stops with a
    checkpoint (not a finished run) that a rerun continues."""
    cfg = tiny_config(max_steps=3)
    net = model()
    module, wrapped = distributed.prepare(net, "sync", Processes(), torch.device("cpu"))
    assert module is net and wrapped is net
    _, log = train(cfg, tmp_path / "r", dataset=dataset(), model=model(), progress=False)
    last = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    assert list(log["step"]) == [1, 2, 3] and last["step"] == 3 and not (tmp_path / "r" / "final.pt").exists()
    assert last["config"]["world_size"] == 1 and last["config"]["max_steps"] == 3
    _, log = train(tiny_config(), tmp_path / "r", dataset=dataset(), model=model(), progress=False)
    assert list(log["step"]) == list(range(1, 13)) and (tmp_path / "r" / "final.pt").is_file()


def test_old_checkpoints_without_new_settings_stay_valid():
    from aigfd_lite.train.runs import config_difference

    stored = TrainConfig().to_json()
    for new in ("batchnorm", "max_steps", "world_size"):
        del stored[new]
    assert config_difference(stored, TrainConfig(world_size=8, max_steps=5).to_json()) == {}
    assert config_difference(stored, TrainConfig(batchnorm="local").to_json()) == {"batchnorm": ("sync", "local")}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(out: Path, phase: str) -> subprocess.CompletedProcess:
    paths = [str(ROOT), str(ROOT / "tests"), *map(str, TEST_FOLDERS)]  # the package, conftest, the tests' helpers
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), OMP_NUM_THREADS="1",
               MASTER_ADDR="127.0.0.1")
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"  # gloo's connections stay on the loopback interface
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), "--max_restarts", "0",
           str(WORKER), str(out), phase]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def torchrun_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    stale = out / "runs" / "build" / "checkpoints" / "lite" / "ours"  # a finished run with other settings
    stale.mkdir(parents=True)
    torch.save({"config": TrainConfig.from_profile(resolve("lite"), feature_dim=16).to_json(),
                "model": {}}, stale / "final.pt")
    first = _torchrun(out, "first")
    assert first.returncode != 0, "the first launch should end with its workers SIGKILLed at step 7"
    assert (out / "audit_first_0.json").is_file(), first.stderr[-4000:]
    resumed = _torchrun(out, "resume")
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    return out


def _single_process(tmp_path: Path, batchnorm: str):
    """One process x B: the trainer's step and the gradient of the same first batch."""
    tcfg = tiny_config(batch_size=8, lr=5e-4, max_steps=1, batchnorm=batchnorm)
    train(tcfg, tmp_path / batchnorm, dataset=dataset(), model=model(), progress=False)
    data = dataset()
    indices = next(iter(ShardedBatchSampler(len(data), 8, tcfg.seed, 0)))
    images, tags, labels, _ = torch.utils.data.default_collate([data[i] for i in indices])
    images = prepare_batch(images, torch.device("cpu"), tcfg.input_size, False)  # as the training step does
    net = model()
    loss, _ = global_batch_loss(net, images, tags, labels, tcfg)
    loss.backward()
    return torch.load(tmp_path / batchnorm / "last.pt", weights_only=True), {
        "loss": loss.detach(), **{name: p.grad for name, p in net.named_parameters()}}


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


def test_one_step_of_two_ranks_equals_one_process(torchrun_runs, tmp_path):
    """2 ranks x 4 images vs 1 process x 8: loss, gradients and updated parameters (and BatchNorm running
    statistics) within 1e-5 with the global-batch BatchNorm; per-rank BatchNorm ("local") measurably differs.

    The step is AdamW at the lite learning rate (5e-4), so a parameter moves ~5e-4 and 1e-5 is a real check.
    Parameters whose true gradient is 0 (the ranking heads' biases: Eq. 2 sees only score differences) get float
    noise, which Adam's first step divides by ``|g| + eps``: their difference is at most ``lr |dg| / eps``.
    """
    single, single_grads = _single_process(tmp_path, "sync")
    ddp = torch.load(torchrun_runs / "runs" / "eq_sync" / "last.pt", weights_only=True)
    ddp_grads = torch.load(torchrun_runs / "grads_sync.pt", weights_only=True)
    assert ddp["config"]["world_size"] == 2 and ddp["step"] == 1
    params = _max_difference(single["model"], ddp["model"])
    grads = _max_difference(single_grads, ddp_grads)
    live = [k for k, g in single_grads.items() if k != "loss" and float(g.abs().max()) > 1e-6]
    live_params = _max_difference({k: single["model"][k] for k in live}, {k: ddp["model"][k] for k in live})
    print(f"\nmax |difference| after one step: loss and gradients {grads:.2e}; parameters and buffers {params:.2e} "
          f"(parameters with a non-zero gradient: {live_params:.2e})")
    assert params < 1e-5 and grads < 1e-5
    local = torch.load(torchrun_runs / "runs" / "eq_local" / "last.pt", weights_only=True)
    local_grads = torch.load(torchrun_runs / "grads_local.pt", weights_only=True)
    local_diff = _max_difference(single_grads, local_grads)
    local_params = _max_difference(single["model"], local["model"])
    print(f"per-rank BatchNorm: loss and gradients differ by up to {local_diff:.2e}, parameters {local_params:.2e}")
    assert local_diff > 1e-4 and local_params > 1e-5


def test_only_rank_0_writes(torchrun_runs):
    for phase in ("first", "resume"):
        rank0 = json.loads((torchrun_runs / f"audit_{phase}_0.json").read_text())
        rank1 = json.loads((torchrun_runs / f"audit_{phase}_1.json").read_text())
        assert rank1 == [] and any(p.endswith("last.pt") for entry in rank0 for p in entry[1:]), (phase, rank1)
    assert sorted(p.name for p in (torchrun_runs / "runs" / "b").iterdir()) == [
        ".lock", "final.pt", "last.pt", "log.csv", "state.json"]  # .lock: rank 0's (aigfd_lite.train.run_lock)


def test_fetch_or_train_moves_a_stale_run_once_behind_a_barrier(torchrun_runs):
    for rank in (0, 1):
        seen = json.loads((torchrun_runs / f"fetch_{rank}.json").read_text())
        assert seen == {"rank": rank, "run_dir_exists": False, "stale": 1}


def test_features_are_sharded_and_gathered_on_rank_0(torchrun_runs):
    got = np.load(torchrun_runs / "features.npz")
    images = np.random.default_rng(3).integers(0, 256, (11, 16, 16, 3), dtype=np.uint8)
    expected = extract_features(model(), images, input_size=16, batch_size=4, progress=False)
    np.testing.assert_allclose(got["array"], expected, rtol=0, atol=1e-6)
    expected = extract_features(model(), dataset(n=7), input_size=16, batch_size=4, progress=False)
    np.testing.assert_allclose(got["dataset"], expected, rtol=0, atol=1e-6)


def test_run_killed_under_torchrun_resumes_bit_exactly(torchrun_runs):
    a = torch.load(torchrun_runs / "runs" / "a" / "last.pt", weights_only=True)
    b = torch.load(torchrun_runs / "runs" / "b" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 12 and a["config"]["world_size"] == b["config"]["world_size"] == 2
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for k, v in a["optimizer"]["state"][0].items():
        assert torch.equal(v, b["optimizer"]["state"][0][k])
    import pandas as pd

    log_a, log_b = (pd.read_csv(torchrun_runs / "runs" / r / "log.csv") for r in ("a", "b"))
    assert list(log_b["step"]) == list(range(1, 13))  # steps 6-7, lost with the kill, were redone
    np.testing.assert_array_equal(log_a["loss"], log_b["loss"])


def test_global_batchnorm_is_batchnorm_over_the_gathered_batch(monkeypatch):
    """GlobalBatchNorm's training branch with the all-reduce made an identity (one rank holding the whole batch)
    equals torch's BatchNorm in float64: output, input and weight gradients, running statistics; dtype is kept."""
    from torch import nn

    monkeypatch.setattr(distributed, "processes", lambda: Processes(0, 2))
    monkeypatch.setattr(distributed._AllReduceSum, "apply", staticmethod(lambda x: x * 1.0))
    torch.manual_seed(0)
    reference = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8, momentum=None)).double()
    converted = distributed.convert_batchnorm(reference, "sync", Processes(0, 2, backend="gloo"))
    assert isinstance(converted[1], distributed.GlobalBatchNorm) and converted[1].weight.dtype == torch.float64
    assert type(reference[1]) is nn.BatchNorm2d  # the caller's model is left as it was
    x = torch.randn(6, 3, 7, 7, dtype=torch.float64)
    weights = torch.randn(6, 8, 5, 5, dtype=torch.float64)
    for _ in range(2):  # two steps: the cumulative running average (momentum=None) too
        outputs = [net(x) for net in (reference, converted)]
        for net, y in zip((reference, converted), outputs):
            (y * weights).sum().backward()
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=1e-12)
    for (name, a), b in zip(reference.named_parameters(), converted.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=1e-10, msg=name)
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(value, converted.state_dict()[key], rtol=0, atol=1e-12, msg=key)
    assert distributed.convert_batchnorm(reference, "local", Processes(0, 2))[1].__class__ is nn.BatchNorm2d
    with pytest.raises(ValueError, match="sync' or 'local"):
        distributed.convert_batchnorm(reference, "group", Processes(0, 2))
