"""Benchmark: the GPU memory of one pretraining step at the paper's settings (chapter 4), measured on this CPU.

ResNet-50 with the book's five heads (:func:`aigfd_lite.models.build_model`), 224 px, training mode, autocast in
bfloat16 (the CPU's stand-in for a T4's float16: 2 bytes per element either way), one forward and backward at
batches 1, 2 and 4 (:func:`aigfd_lite.gpu_memory.estimate_training_memory`), extrapolated linearly to the
micro-batch of each row, for one process and per process of a 2- and 4-GPU DDP run (whose gradient buckets add
one fp32 copy of the gradients). "Fits" means: the estimate x (1 + fragmentation margin) plus the CUDA context
fits the GPU's memory (assumptions, printed). A T4 shows 15,360 MiB to nvidia-smi (15 GiB, assumed here).

    .venv/bin/python tools/bench_gpu_memory.py [--batches 1 2 4] [--gpu-gib 15] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import time

import pandas as pd

from aigfd_lite.gpu_memory import CONTEXT_GB, FRAGMENTATION, estimate_training_memory, memory_table
from aigfd_lite.runs import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--gpu-gib", type=float, default=15.0)
    parser.add_argument("--json", default=None)
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
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"estimate": estimate, "seconds": seconds, "table": table.to_dict("records")}, f, indent=1,
                      default=str)


if __name__ == "__main__":
    main()
