"""Measure that W torchrun processes x B/W take the same optimiser step as one process x B (chapter 4).

Taught in chapter 4 (``book/04_pretraining.md``, "Several GPUs and nodes"). :func:`measure_equivalence` makes one
AdamW step of the profile's network (random init) on one seeded synthetic batch in this process, launches
``torchrun --nproc_per_node W`` on the CPU (gloo, 127.0.0.1) to make the same step with each rank holding ``B / W``
images, once with the global-batch BatchNorm (``"sync"``) and once with per-rank BatchNorm (``"local"``), and
compares loss, gradients and updated parameters. The pieces are the trainer's own
(:func:`aigfd_lite.distributed.prepare`, :func:`aigfd_lite.train.global_batch_loss`).

    python -m torch.distributed.run --nproc_per_node 2 -m aigfd_lite.ddp_check OUT_DIR CONFIG_JSON   (what it runs)
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .distributed import init_from_env, prepare, processes, shutdown
from .models import build_model
from .train import TrainConfig, global_batch_loss

_TREATMENTS = ("sync", "local")


def synthetic_batch(tcfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A seeded global batch: normalised-looking images, tags in camera-like ranges, half manipulated."""
    generator = torch.Generator().manual_seed(tcfg.seed)
    images = torch.randn(tcfg.batch_size, 3, tcfg.input_size, tcfg.input_size, generator=generator)
    low, high = torch.tensor([1.4, 1 / 4000, 18.0, 100.0]), torch.tensor([16.0, 1 / 15, 200.0, 3200.0])
    tags = low + (high - low) * torch.rand(tcfg.batch_size, 4, generator=generator)
    labels = torch.arange(tcfg.batch_size) % 2
    return images, tags, labels


def one_step(tcfg: TrainConfig, batchnorm: str) -> dict[str, Any]:
    """Loss, gradients (after DDP's averaging) and parameters after one AdamW step, on this rank's slice."""
    procs = processes()
    images, tags, labels = synthetic_batch(tcfg)
    rows = slice(procs.rank * tcfg.batch_size // procs.world_size,
                 (procs.rank + 1) * tcfg.batch_size // procs.world_size)
    module, net = prepare(build_model("random", tcfg.feature_dim, tcfg.tasks, seed=tcfg.seed), batchnorm, procs,
                          torch.device("cpu"))
    optimizer = torch.optim.AdamW(module.parameters(), lr=tcfg.lr, betas=tcfg.betas, eps=tcfg.eps,
                                  weight_decay=tcfg.weight_decay)
    net.train()
    loss, _ = global_batch_loss(net, images[rows], tags[rows], labels[rows], tcfg)
    optimizer.zero_grad()
    loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in module.named_parameters()}
    optimizer.step()
    return {"loss": loss.detach(), "grads": grads, "state": module.state_dict()}


def _max_abs_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


def measure_equivalence(cfg: Any, world_size: int = 2, batch_size: int = 16, input_size: int = 32,
                        timeout: float = 900) -> pd.DataFrame:
    """One row per BatchNorm treatment: loss of 1 process and of ``world_size`` processes, max |difference| of the
    gradients and of the parameters (and BatchNorm statistics) after one step. ``cfg``: a profile or TrainConfig."""
    tcfg = cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_profile(cfg)
    tcfg = TrainConfig.from_json({**tcfg.to_json(), "batch_size": batch_size, "input_size": input_size,
                                  "device": "cpu", "init": "random"})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        (out / "config.json").write_text(json.dumps(tcfg.to_json()))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ, MASTER_ADDR="127.0.0.1")
        if sys.platform.startswith("linux"):
            env["GLOO_SOCKET_IFNAME"] = "lo"
        started = time.perf_counter()
        launched = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(world_size), "--master_addr",
             "127.0.0.1", "--master_port", str(port), "-m", "aigfd_lite.ddp_check", str(out),
             str(out / "config.json")], env=env, capture_output=True, text=True, timeout=timeout)
        if launched.returncode != 0:
            raise RuntimeError(f"torchrun failed ({launched.returncode}):\n{launched.stderr[-3000:]}")
        seconds = time.perf_counter() - started
        rows = []
        for treatment in _TREATMENTS:
            single = one_step(tcfg, treatment)  # in one process the treatment changes nothing
            ranks = torch.load(out / f"{treatment}.pt", weights_only=True)
            rows.append({"BatchNorm": treatment, "loss, 1 process": float(single["loss"]),
                         f"loss, {world_size} processes": float(ranks["loss"]),
                         "max |diff| gradients": _max_abs_difference(single["grads"], ranks["grads"]),
                         "max |diff| parameters after the step": _max_abs_difference(single["state"],
                                                                                    ranks["state"]),
                         "torchrun seconds": round(seconds, 1)})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    out, config = (Path(a) for a in (argv or sys.argv[1:]))
    tcfg = TrainConfig.from_json(json.loads(config.read_text()))
    procs, _ = init_from_env("cpu")
    for treatment in _TREATMENTS:
        result = one_step(tcfg, treatment)
        if procs.main:
            torch.save(result, out / f"{treatment}.pt")
    shutdown()


if __name__ == "__main__":
    main()
