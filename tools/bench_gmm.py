"""Benchmark: fit time of the paper's detector (K = 8, full covariances) on a 25,000 x 768 feature matrix.

    python tools/bench_gmm.py [--n 25000] [--dim 768] [--components 8]

The features are synthetic (a seeded mixture of 8 Gaussians with random low-rank-plus-noise covariances, the shape
of the paper's CelebA-HQ feature matrix); one run, wall-clock seconds of ``GMMDetector.fit`` (GMM fit, EM iterations
until sklearn's tolerance, plus the threshold), printed with the iteration count and the machine's thread count.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aigfd_lite.detector.gmm import GMMDetector  # noqa: E402


def synthetic_features(n: int, dim: int, k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rank = 32
    labels = rng.integers(0, k, n)
    centres = rng.normal(0, 3, (k, dim))
    loadings = rng.normal(0, 1, (k, dim, rank)) / np.sqrt(rank)
    X = np.empty((n, dim), np.float32)
    for c in range(k):
        idx = np.flatnonzero(labels == c)
        X[idx] = centres[c] + rng.normal(0, 1, (len(idx), rank)) @ loadings[c].T + 0.3 * rng.normal(0, 1, (len(idx), dim))
    return X


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=25_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--components", type=int, default=8)
    args = parser.parse_args()
    X = synthetic_features(args.n, args.dim, args.components)
    start = time.perf_counter()
    det = GMMDetector(n_components=args.components).fit(X)
    seconds = time.perf_counter() - start
    print(f"GMM fit: {args.n} x {args.dim}, K={args.components}, full covariance: {seconds:.1f} s "
          f"({det.gmm_.n_iter_} EM iterations, converged={det.gmm_.converged_}); "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")


if __name__ == "__main__":
    main()
