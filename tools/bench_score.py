"""Throughput of `aigfd score` (images/s, face detection included) on a folder of lite photos.

    python tools/bench_score.py [--n 40] [--bundle _build/bundle]

Builds a folder of ``n`` images (the lite corpus's source photos, cycled; each a whole photograph that must go
through face detection), runs ``python -m aigfd_lite.cli score`` on it as a user would, and prints the command's own
measurement (bundle loading excluded) and the wall time of the whole command (Python start-up and bundle loading
included). Needs a bundle: run chapter 9 or `aigfd bundle` first.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--bundle", default=str(ROOT / "_build" / "bundle"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from aigfd_lite.faces.corpus import corpus_photos

    photos = [p.path for p in corpus_photos() if p.source != "nba-headshots"] or [p.path for p in corpus_photos()]
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.n):
            src = photos[k % len(photos)]
            shutil.copy(src, Path(tmp) / f"{k:04d}{src.suffix}")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "aigfd_lite.cli", "score", tmp, "--bundle", args.bundle,
                               "--format", "json"], capture_output=True, text=True, env=env, timeout=3600)
        wall = time.perf_counter() - start
    if proc.returncode == 2:
        print(proc.stderr.strip())
        return 2
    rows = json.loads(proc.stdout)
    inner = re.search(r"\(([\d.]+) images/s\)", proc.stderr)
    print(json.dumps({"images": args.n, "faces": sum(r["error"] is None for r in rows),
                      "images_per_second_scoring": float(inner.group(1)) if inner else None,
                      "wall_seconds_whole_command": round(wall, 1),
                      "images_per_second_whole_command": round(args.n / wall, 3),
                      "cpu_count": os.cpu_count(), "summary": proc.stderr.strip()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
