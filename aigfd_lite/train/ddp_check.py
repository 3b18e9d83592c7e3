"""Measure that W torchrun processes x B/W take the same optimiser step as one process x B (chapter 4).

Taught in chapter 4 (``book/04_pretraining.md``, "Several GPUs and nodes"). :func:`measure_equivalence` makes one
AdamW step of the profile's network (random init) on one seeded synthetic batch in this process, launches
``torchrun --nproc_per_node W`` on the CPU (gloo, 127.0.0.1) to make the same step with each rank holding ``B / W``
images, once with the global-batch BatchNorm (``"sync"``) and once with per-rank BatchNorm (``"local"``), and
compares loss, gradients and updated parameters. The pieces are the trainer's own
(:func:`aigfd_lite.runtime.distributed.prepare`, :func:`aigfd_lite.train.loop.global_batch_loss`).

    python -m torch.distributed.run --nproc_per_node 2 -m aigfd_lite.train.ddp_check OUT_DIR CONFIG_JSON   (what it runs)
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..runtime import init_from_env, prepare, processes, shutdown
from ..models import build_model
from .loop import TrainConfig, global_batch_loss

#: (BatchNorm, dtype) of the steps the ranks make: the training dtype with both treatments, and float64, where
#: rounding noise is ~1e-16 instead of ~1e-7, so any difference left would be a real one.
_CASES = (("sync", torch.float32), ("local", torch.float32), ("sync", torch.float64))


def synthetic_batch(tcfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded global batch: normalised-looking images, tags in camera-like ranges, half manipulated."""
    generator = torch.Generator().manual_seed(tcfg.seed)
    images = torch.randn(tcfg.batch_size, 3, tcfg.input_size, tcfg.input_size, generator=generator)
    low, high = torch.tensor([1.4, 1 / 4000, 18.0, 100.0]), torch.tensor([16.0, 1 / 15, 200.0, 3200.0])
    tags = low + (high - low) * torch.rand(tcfg.batch_size, 4, generator=generator)
    labels = torch.arange(tcfg.batch_size) % 2
    return images, tags, labels


def one_step(tcfg: TrainConfig, batchnorm: str, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """Loss, gradients (after DDP's averaging) and parameters after one AdamW step, on this rank's slice."""
    procs = processes()
    images, tags, labels = synthetic_batch(tcfg)
    rows = slice(procs.rank * tcfg.batch_size // procs.world_size,
                 (procs.rank + 1) * tcfg.batch_size // procs.world_size)
    model = build_model("random", tcfg.feature_dim, tcfg.tasks, seed=tcfg.seed).to(dtype)
    module, net = prepare(model, batchnorm, procs, torch.device("cpu"))
    optimizer = torch.optim.AdamW(module.parameters(), lr=tcfg.lr, betas=tcfg.betas, eps=tcfg.eps,
                                  weight_decay=tcfg.weight_decay)
    net.train()
    loss, _ = global_batch_loss(net, images[rows].to(dtype), tags[rows], labels[rows], tcfg)
    optimizer.zero_grad()
    loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in module.named_parameters()}
    optimizer.step()
    return {"loss": loss.detach(), "grads": grads, "state": module.state_dict()}


def _row(name: str, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    def worst(x: dict[str, torch.Tensor], y: dict[str, torch.Tensor]) -> float:
        return max(float((x[k].double() - y[k].double()).abs().max()) for k in x if x[k].is_floating_point())

    scale = max(float(g.abs().max()) for g in a["grads"].values())
    return {"comparison": name, "loss a": float(a["loss"]), "loss b": float(b["loss"]),
            "max |gradient|": scale, "max |diff| gradients": worst(a["grads"], b["grads"]),
            "relative": worst(a["grads"], b["grads"]) / scale,
            "max |diff| parameters after the step": worst(a["state"], b["state"])}


def measure_equivalence(cfg: Any, world_size: int = 2, batch_size: int = 16, input_size: int = 32,
                        timeout: float = 900) -> pd.DataFrame:
    """One row per comparison: ``world_size`` processes against one (global-batch and per-rank BatchNorm in
    float32, global-batch BatchNorm in float64) and, as the yardstick of float32 rounding noise, one process
    with one thread against one with all threads. ``cfg``: a profile or a TrainConfig (its network, lr, ...)."""
    tcfg = cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_profile(cfg)
    tcfg = TrainConfig.from_json({**tcfg.to_json(), "batch_size": batch_size, "input_size": input_size,
                                  "device": "cpu", "init": "random"})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / "config.json").write_text(json.dumps(tcfg.to_json()))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", OMP_NUM_THREADS="1")
        if sys.platform.startswith("linux"):
            env["GLOO_SOCKET_IFNAME"] = "lo"
        launched = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(world_size), "--master_addr",
             "127.0.0.1", "--master_port", str(port), "-m", "aigfd_lite.train.ddp_check", str(out),
             str(out / "config.json")], env=env, capture_output=True, text=True, timeout=timeout)
        if launched.returncode != 0:
            raise RuntimeError(f"torchrun failed ({launched.returncode}):\n{launched.stderr[-3000:]}")
        threads = torch.get_num_threads()
        rows = []
        try:
            torch.set_num_threads(1)  # as each torchrun process
            for batchnorm, dtype in _CASES:
                ranks = torch.load(out / f"{batchnorm}-{dtype}.pt", weights_only=True)
                name = f"1 vs {world_size} processes, {batchnorm} BatchNorm, {str(dtype)[6:]}"
                rows.append(_row(name, one_step(tcfg, batchnorm, dtype), ranks))
            single = one_step(tcfg, "sync")
            torch.set_num_threads(threads)
            rows.append(_row(f"1 process: 1 vs {threads} threads, float32", single, one_step(tcfg, "sync")))
        finally:
            torch.set_num_threads(threads)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    out, config = (Path(a) for a in (argv or sys.argv[1:]))
    tcfg = TrainConfig.from_json(json.loads(config.read_text()))
    procs, _ = init_from_env("cpu")
    for batchnorm, dtype in _CASES:
        result = one_step(tcfg, batchnorm, dtype)
        if procs.main:
            torch.save(result, out / f"{batchnorm}-{dtype}.pt")
    shutdown()


if __name__ == "__main__":
    main()
