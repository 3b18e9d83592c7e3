"""Benchmark: the FDF index at scale. Build time, warm-start time and peak RSS at 20,000 and 200,000 entries.

    python tools/bench_fdf_index.py [--sizes 20000 200000] [--workdir /tmp/aigfd_bench_fdf] [--steps 1000]
                                    [--batch 16]

For each size N: an official-layout tree of N entries is generated once (tools/make_fdf_tree.py: one image
hard-linked, a pool of EXIF JSONs); then, each in a fresh process, (1) the index is built from the layout (what
every start cost before the index: id map, metadata JSON, one JSON per photo), (2) a warm start reads the index
(``FDFLayout(root)``), then draws ``--steps`` batches of ``--batch`` random items (decode, crop), a data-loading
stand-in for the first training steps (no model: the model's memory does not depend on N). Peak RSS is the
process's VmHWM (Linux). Budgets (issue 11): build <= 5 min on 2 cores, warm start <= 20 s, peak RSS growth from 20K
to 200K <= 0.5 GB.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUDGETS = {"build_s": 300.0, "warm_start_s": 20.0, "rss_growth_gb": 0.5}


def peak_rss_gb() -> float:
    """This process's peak resident memory: VmHWM (reset at exec, unlike ru_maxrss, which a child started by a
    large parent inherits), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024 ** 2  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # Linux: kilobytes


def child(mode: str, tree: str, index_dir: str, steps: int, batch: int, workers=None) -> dict:
    entered = time.perf_counter()
    import numpy as np

    from aigfd_lite.fdf.layout import FDFLayout

    out = {"rss_after_imports_gb": peak_rss_gb()}
    started = time.perf_counter()
    layout = FDFLayout(tree, index=index_dir, rebuild_index=(mode == "build"), progress=False,
                       index_workers=workers)
    out["seconds"] = time.perf_counter() - started
    out["seconds_with_imports"] = time.perf_counter() - entered
    out["faces"], out["skips"] = len(layout), dict(layout.skips)
    out["rss_after_start_gb"] = peak_rss_gb()
    if mode == "warm" and steps:
        rng = np.random.default_rng(0)
        started = time.perf_counter()
        for step in range(steps):
            layout.set_epoch(step)
            for i in rng.integers(0, len(layout), batch):
                layout[int(i)]
        out["steps_seconds"] = time.perf_counter() - started
    out["peak_rss_gb"] = peak_rss_gb()
    return out


def run_child(mode: str, tree: Path, index_dir: Path, args) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, str(tree), str(index_dir), "--steps", str(args.steps),
           "--batch", str(args.batch)] + (["--workers", str(args.workers)] if args.workers else [])
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if done.returncode:
        raise SystemExit(f"{mode} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/aigfd_bench_fdf"))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=None, help="index build processes (default: one per CPU)")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "TREE", "INDEX_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.steps, args.batch, args.workers)))
        return
    from aigfd_lite.data.miniature import write_synthetic_tree

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    rows = {}
    for n in args.sizes:
        tree = args.workdir / f"fdf_{n}"
        if not (tree / "done").is_file():
            started = time.perf_counter()
            write_synthetic_tree(tree, n)
            (tree / "done").write_text("")
            print(f"N={n}: tree generated in {time.perf_counter() - started:.1f} s")
        build = run_child("build", tree, tree / "index", args)
        warm = run_child("warm", tree, tree / "index", args)
        size_mb = sum(f.stat().st_size for f in (tree / "index").glob("*.npz")) / 1e6
        rows[n] = dict(build=build, warm=warm, index_mb=size_mb)
        print(f"N={n}: {build['faces']} faces indexed; build {build['seconds']:.1f} s (peak RSS "
              f"{build['peak_rss_gb']:.2f} GB); index file {size_mb:.1f} MB; warm start {warm['seconds']:.2f} s "
              f"({warm['seconds_with_imports']:.2f} s with imports) "
              f"(RSS after start {warm['rss_after_start_gb']:.2f} GB); {args.steps} steps x {args.batch} items "
              f"{warm.get('steps_seconds', 0):.1f} s, peak RSS {warm['peak_rss_gb']:.2f} GB")
    if len(rows) >= 2:
        small, large = min(rows), max(rows)
        growth = rows[large]["warm"]["peak_rss_gb"] - rows[small]["warm"]["peak_rss_gb"]
        worst_build = max(r["build"]["seconds"] for r in rows.values())
        worst_warm = max(r["warm"]["seconds"] for r in rows.values())
        for label, value, budget in (("index build, s", worst_build, BUDGETS["build_s"]),
                                     ("warm start, s", worst_warm, BUDGETS["warm_start_s"]),
                                     (f"peak RSS growth {small} -> {large}, GB", growth, BUDGETS["rss_growth_gb"])):
            print(f"{label:<40} {value:8.2f}  budget {budget:6.1f}  {'ok' if value <= budget else 'OVER BUDGET'}")


if __name__ == "__main__":
    main()
