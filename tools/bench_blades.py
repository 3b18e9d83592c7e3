"""Benchmark: cost of one BLADES step with bi-level task weights against one equal-weight step (chapter 7).

The bi-level step adds a validation forward+backward at the virtual parameters and two forward passes for the
finite-difference hypergradient. Measured with the lite profile's image tower architecture (random weights: the
cost does not depend on them), its input size and batch size, on synthetic batches; wall time and CPU time per
step (CPU time counts every core the process used).

    .venv/bin/python tools/bench_blades.py [--steps 5] [--profile lite] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from aigfd_lite import resolve
from aigfd_lite.blades.bilevel import TaskWeights, bilevel_step
from aigfd_lite.blades.training import LOSS_NAMES, BladesConfig, build_blades_model, build_image_tower, task_losses
from aigfd_lite.blades.tasks import TASKS


def synthetic_batch(bcfg: BladesConfig, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    n, categorical = bcfg.batch_size, [t for t in TASKS if t.kind == "categorical"]
    return [torch.randn(n, 3, bcfg.input_size, bcfg.input_size, generator=g),
            torch.randint(-1, 3, (n, 4), generator=g),
            torch.stack([torch.randint(0, t.n_targets, (n,), generator=g) for t in categorical], 1),
            torch.randint(0, 2, (n,), generator=g), torch.randint(0, 2, (n, 2), generator=g).float()]


def measure(bcfg: BladesConfig, bilevel: bool, steps: int) -> dict[str, float]:
    model = build_blades_model(build_image_tower(bcfg, "random", bcfg.feature_dim, 0), "learned")
    optimizer = torch.optim.AdamW(model.parameters(), lr=bcfg.lr)
    weights = TaskWeights(LOSS_NAMES, bcfg.outer_lr) if bilevel else None

    def losses(net, batch):
        return task_losses(net(batch[0]), batch, bcfg.focal_gamma, bcfg.ranking_variant)

    def val(net, batch):
        return losses(net, batch)[LOSS_NAMES.index("manipulation")]

    batches = [synthetic_batch(bcfg, s) for s in range(2 * steps + 2)]
    bilevel_step(model, optimizer, weights, losses, batches[0], val, batches[1])  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    for k in range(steps):
        bilevel_step(model, optimizer, weights, losses, batches[2 + 2 * k], val, batches[3 + 2 * k])
    return {"wall_s_per_step": (time.perf_counter() - wall) / steps,
            "cpu_s_per_step": (time.process_time() - cpu) / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--profile", default="lite")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    bcfg = BladesConfig.from_profile(resolve(args.profile), device="cpu")
    out = {"profile": args.profile, "batch_size": bcfg.batch_size, "input_size": bcfg.input_size,
           "threads": torch.get_num_threads(),
           "equal_weights": measure(bcfg, False, args.steps), "bilevel": measure(bcfg, True, args.steps)}
    out["bilevel_over_equal_wall"] = out["bilevel"]["wall_s_per_step"] / out["equal_weights"]["wall_s_per_step"]
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
