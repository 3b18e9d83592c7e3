"""Make an official-layout training tree of N FDF entries cheaply (hard links), for benchmarks and rehearsals.

    python tools/make_fdf_tree.py N OUT [--size 16] [--no-manipulated]

Writes OUT/SSL_training_data with N faces: one small image hard-linked as every face (and its four manipulated
files), a pool of 997 EXIF JSONs hard-linked per photo, and the id map, metadata JSON and FDF arrays in full
(see aigfd_lite.data.miniature.write_synthetic_tree). OUT must not exist yet.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aigfd_lite.data.miniature import write_synthetic_tree  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, default=16, help="side of the one linked image, px")
    parser.add_argument("--no-manipulated", action="store_true")
    args = parser.parse_args(argv)
    if args.out.exists():
        parser.error(f"{args.out} exists; choose a new folder")
    started = time.perf_counter()
    root = write_synthetic_tree(args.out, args.n, size=args.size, manipulated=not args.no_manipulated)
    print(f"{args.n} entries at {root} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
