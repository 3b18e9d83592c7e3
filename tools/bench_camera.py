"""Benchmark the camera simulator (aigfd_lite.camera): images per second at 128 px on one core.

Usage: .venv/bin/python tools/bench_camera.py [--n 1000] [--size 128]

Reports wall-clock and CPU-time throughput of ``simulate`` with tags from ``sample_tags`` (so the mix of blur lengths
is the training mix) and the CPU time of each effect alone. CPU time is the fairer number on a shared machine; the
load average is printed so a reader can judge the wall-clock one. The budget is >= 300 images/s per core.

``--tune-malloc`` raises glibc's trim/mmap thresholds (``mallopt``) first. The simulator's 200 kB float temporaries
otherwise make glibc hand memory back to the kernel and fault it in again on every call, about a third of the time
on our machine. Data-loading workers get the same effect from the environment variables
``MALLOC_TRIM_THRESHOLD_=268435456 MALLOC_MMAP_THRESHOLD_=33554432``.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, before numpy loads
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data  # noqa: E402

from aigfd_lite.camera import simulator as camera  # noqa: E402


def face(size: int) -> np.ndarray:
    """The astronaut's face from scikit-image (a real photo), cropped and resized to ``size`` px."""
    crop = data.astronaut()[10:230, 110:330]
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.BILINEAR))


def per_call_ms(fn, n: int) -> float:
    fn()
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="images to simulate")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--tune-malloc", action="store_true", help="raise glibc's trim/mmap thresholds first")
    args = parser.parse_args()
    if args.tune_malloc:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD

    img = face(args.size)
    rng = np.random.default_rng(0)
    tags = camera.sample_tags(rng, args.n)
    camera.simulate(img, tags[0], rng)  # warm caches

    wall, cpu = time.perf_counter(), time.process_time()
    for row in tags:
        camera.simulate(img, row, rng)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"simulate, {args.n} images at {args.size} px{' (malloc tuned)' if args.tune_malloc else ''}: "
          f"{args.n / cpu:.0f} images/s (CPU time), "
          f"{args.n / wall:.0f} images/s (wall clock)")

    med = {t: q[1] for t, q in camera.PAPER_QUARTILES.items()}
    effects = {
        "perspective (20 mm)": lambda: camera.perspective(img, 20.0),
        "radial_distortion (20 mm)": lambda: camera.radial_distortion(img, 20.0),
        "defocus_background (F2.8)": lambda: camera.defocus_background(img, 2.8),
        "motion_blur (1/60 s)": lambda: camera.motion_blur(img, 1 / 60, rng),
        "vignette (F2.8)": lambda: camera.vignette(img, 2.8),
        "exposure (1/60 s)": lambda: camera.exposure(img, 1 / 60),
        "sensor_noise (ISO 800)": lambda: camera.sensor_noise(img, 800, rng),
        "jpeg (q 90)": lambda: camera.jpeg(img, 90),
        "simulate (median tags)": lambda: camera.simulate(img, med, rng),
    }
    for name, fn in effects.items():
        print(f"  {name:28s} {per_call_ms(fn, 200):6.3f} ms CPU (uint8 in and out)")


if __name__ == "__main__":
    main()
