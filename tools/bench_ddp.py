"""Benchmark: optimiser steps/s of the lite model, one process against two torchrun processes on this CPU (chapter 4).

The real training loop (:func:`aigfd_lite.train.train`) on an in-memory synthetic set with the lite profile's
shapes (ResNet-50, 64 px, global batch 32), so the figure is the model's and the collectives', not the data
pipeline's. Modes: one process with all cores' threads (the notebook's case), one process with one thread, and two
processes of one thread each (torchrun's default) with the global-batch BatchNorm ("sync") and with per-rank
BatchNorm ("local"). The step time is the median over the measured steps (this machine is shared and noisy); the
load average is printed beside it, and the CPU seconds per step summed over the processes (the work, whatever the
load; it includes the warm-up step and the collectives' busy waiting). CPU only: GPU scaling is not measured here.

    .venv/bin/python tools/bench_ddp.py [--steps 8] [--batch-size 32] [--input-size 64] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


class Synthetic(torch.utils.data.Dataset):
    """Normalised random images with random tags and labels: the model's work without the data pipeline's."""

    def __init__(self, n: int, size: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.images = torch.randn(n, 3, size, size, generator=generator)
        self.tags = torch.rand(n, 4, generator=generator) * torch.tensor([6.0, 0.02, 180.0, 1500.0])
        self.labels = torch.randint(0, 2, (n,), generator=generator)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], self.tags[i], self.labels[i], self.labels[i]


def run(args: argparse.Namespace, batchnorm: str, out: Path) -> None:
    """Train ``args.steps + 1`` steps; rank 0 writes the median step time (the first step, a warm-up, excluded)."""
    from aigfd_lite.models.initialisation import build_model
    from aigfd_lite.train.loop import TrainConfig, train

    tcfg = TrainConfig(profile="lite", device="cpu", batch_size=args.batch_size, epochs=1, input_size=args.input_size,
                       num_workers=0, max_steps=args.steps + 1, checkpoint_every_steps=10**9, batchnorm=batchnorm)
    data = Synthetic(args.batch_size * (args.steps + 1), args.input_size)
    model = build_model("random", seed=0)
    cpu = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        _, log = train(tcfg, Path(tmp) / "run", dataset=data, model=model, progress=False)
    cpu = (time.process_time() - cpu) / len(log)  # this process's CPU seconds per step (load-independent)
    cpus = [cpu]
    if torch.distributed.is_initialized():
        cpus = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(cpus, cpu)
    if int(os.environ.get("RANK", "0")) == 0:
        seconds = float(np.median(np.diff(log["elapsed_seconds"].to_numpy())))
        out.write_text(json.dumps({"seconds_per_step": seconds, "threads": torch.get_num_threads(),
                                   "cpu_seconds_per_step": sum(cpus)}))


def launch(args: argparse.Namespace, mode: str, out: Path) -> dict:
    processes, threads, batchnorm = {"1 process": (1, None, "sync"), "1 process, 1 thread": (1, 1, "sync"),
                                     "2 processes, sync BN": (2, 1, "sync"),
                                     "2 processes, local BN": (2, 1, "local")}[mode]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    worker = [str(Path(__file__).resolve()), "--worker", batchnorm, str(out), "--steps", str(args.steps),
              "--batch-size", str(args.batch_size), "--input-size", str(args.input_size)]
    if processes == 1:
        cmd = [sys.executable, *worker]
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env.update(MASTER_ADDR="127.0.0.1", GLOO_SOCKET_IFNAME="lo")
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
               "--master_addr", "127.0.0.1", "--master_port", str(port), *worker]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    result = json.loads(out.read_text())
    seconds = result["seconds_per_step"]
    return {"mode": mode, "processes": processes, "threads per process": result["threads"],
            "seconds per step": round(seconds, 3), "steps/s": round(1 / seconds, 3),
            "images/s": round(args.batch_size / seconds, 1),
            "CPU seconds per step (all processes)": round(result["cpu_seconds_per_step"], 2),
            "wall seconds incl. start-up":
            round(time.perf_counter() - started, 1), "load average (1 min)": round(os.getloadavg()[0], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--modes", nargs="+", default=["1 process", "1 process, 1 thread", "2 processes, sync BN",
                                                       "2 processes, local BN"])
    parser.add_argument("--worker", nargs=2, metavar=("BATCHNORM", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.worker:
        run(args, args.worker[0], Path(args.worker[1]))
        return
    print(f"{os.cpu_count()} CPUs; load average before: {os.getloadavg()[0]:.1f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, mode in enumerate(args.modes):
            rows.append(launch(args, mode, Path(tmp) / f"{k}.json"))
            print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["steps/s"]
    for row in rows:
        row[f"speed-up vs {rows[0]['mode']}"] = round(row["steps/s"] / base, 2)
    import pandas as pd

    print(pd.DataFrame(rows).to_string(index=False))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
