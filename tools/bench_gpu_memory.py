"""Benchmark: the GPU memory of one pretraining step at the paper's settings (chapter 4), measured on this CPU.

ResNet-50 with the book's five heads (:func:`aigfd_lite.models.build_model`), 224 px, training mode, autocast in
bfloat16 (the CPU's stand-in for a T4's float16: 2 bytes per element either way), one forward and backward at
batches 1, 2 and 4 (:func:`aigfd_lite.train.gpu_memory.estimate_training_memory`), extrapolated linearly to the
micro-batch of each row, for one process and per process of a 2- and 4-GPU DDP run (whose gradient buckets add
one fp32 copy of the gradients). "Fits" means: the estimate x (1 + fragmentation margin) plus the CUDA context
fits the GPU's memory (assumptions, printed). A T4 shows 15,360 MiB to nvidia-smi (15 GiB, assumed here).

With ``--accumulation``, also the price of gradient accumulation on this CPU with the lite network and data
(MobileNetV2 from ImageNet, the first 128 px training batch of 32 lite faces, one process, fp32): seconds per optimiser step (median of ``--repeats`` after a warm-up)
for 1, 2 and 4 micro-batches (pass 1 adds one forward) and CPU seconds (all threads: robust to other load), and how far the gradient of the first step moves from
the one-batch gradient because BatchNorm normalises over micro-batches (relative L2 and max differences).

    .venv/bin/python tools/bench_gpu_memory.py [--batches 1 2 4] [--gpu-gib 15] [--accumulation] [--json out.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import pandas as pd

from aigfd_lite.train.gpu_memory import CONTEXT_GB, FRAGMENTATION, estimate_training_memory, memory_table
from aigfd_lite.train.runs import TrainConfig


def accumulation_cost(steps=(1, 2, 4), batch: int = 32, repeats: int = 5) -> pd.DataFrame:
    import torch

    from aigfd_lite.runtime.distributed import Precision
    from aigfd_lite.models.initialisation import build_model
    from aigfd_lite.train.loop import train_step

    from aigfd_lite import resolve
    from aigfd_lite.runtime.distributed import ShardedBatchSampler
    from aigfd_lite.pretext.build import build_pretext_dataset

    lite = TrainConfig.from_profile(resolve("lite"))  # the first training batch of the lite run (chapter 4)
    data = build_pretext_dataset(lite, "train")
    data.set_epoch(0)
    first = next(iter(ShardedBatchSampler(len(data), batch, lite.seed, 0)))
    images, tags, labels, _ = torch.utils.data.default_collate([data[i] for i in first])
    images = images.contiguous(memory_format=torch.channels_last)
    rows, reference = [], None
    for k in steps:
        model = build_model("imagenet", backbone="mobilenet_v2", seed=0).to(memory_format=torch.channels_last)
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # weights stay: every step is the first one
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        tcfg = dataclasses.replace(lite, accumulation_steps=k, batch_size=batch)
        times, cpu = [], []
        for _ in range(repeats + 1):
            tick, tock = time.perf_counter(), time.process_time()
            train_step(model, images, tags, labels, tcfg, Precision(), optimizer, scaler)
            times.append(time.perf_counter() - tick)
            cpu.append(time.process_time() - tock)
        grad = torch.cat([p.grad.flatten() for p in model.parameters()])
        reference = grad if reference is None else reference
        rows.append({"accumulation_steps": k, "images per forward": batch // k,
                     "seconds per step (median)": float(np.median(times[1:])),
                     "CPU seconds per step (median)": float(np.median(cpu[1:])),
                     "gradient change (relative L2)": float((grad - reference).norm() / reference.norm()),
                     "gradient change (max / max)": float((grad - reference).abs().max() / reference.abs().max())})
    table = pd.DataFrame(rows)
    table["CPU time vs 1 micro-batch"] = (table["CPU seconds per step (median)"]
                                          / table["CPU seconds per step (median)"].iloc[0])
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--gpu-gib", type=float, default=15.0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--accumulation", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    tcfg = TrainConfig()  # the full profile's settings: ResNet-50, 224 px, batch 256
    started = time.perf_counter()
    estimate = estimate_training_memory(tcfg, batches=tuple(args.batches))
    seconds = time.perf_counter() - started
    for row in estimate["measurements"]:
        print(f"batch {row['batch']}: peak {row['peak_bytes'] / 2**20:.1f} MiB (with gradients "
              f"{row['peak_with_gradients_bytes'] / 2**20:.1f}), saved for backward "
              f"{row['saved_bytes'] / 2**20:.1f} MiB")
    print(f"measured in {seconds:.0f} s ({estimate['dtype']} autocast on {estimate['device']}); "
          f"activations {estimate['activation_per_image_bytes'] / 2**20:.1f} MiB/image (saved tensors "
          f"{estimate['saved_per_image_bytes'] / 2**20:.1f}), + input {estimate['input_per_image_bytes'] / 2**20:.2f}"
          f"; largest deviation from the line {estimate['linearity']:.1%}")
    print("fixed part (MiB):", {k: round(v / 2**20, 1) for k, v in estimate["fixed"].items()})
    print(f"assumed: CUDA context {CONTEXT_GB} GiB, fragmentation margin {FRAGMENTATION:.0%}, "
          f"GPU {args.gpu_gib} GiB")
    tables = []
    for world in (1, 2, 4):
        est = dict(estimate)
        if world > 1:
            params = estimate["fixed"]["parameters"]
            est["fixed_bytes"] = estimate["fixed_bytes"] + params  # DDP's gradient buckets
        per_process = [b for b in (32, 64, 128, 256) if b <= 256 // world]
        table = memory_table(est, tuple(per_process), gpu_gb=args.gpu_gib)
        table.insert(0, "processes", world)
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    with pd.option_context("display.width", 160, "display.float_format", "{:.2f}".format):
        print(table.to_string(index=False))
    result = {"estimate": estimate, "seconds": seconds, "table": table.to_dict("records")}
    if args.accumulation:
        cost = accumulation_cost(repeats=args.repeats)
        with pd.option_context("display.width", 160, "display.float_format", "{:.3g}".format):
            print(cost.to_string(index=False))
        result["accumulation"] = cost.to_dict("records")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, default=str)


if __name__ == "__main__":
    main()
