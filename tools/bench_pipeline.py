"""Benchmark: images/s of the pretraining data pipeline against images/s of the model's forward+backward (chapter 4).

The accelerator should never wait for data: the goal is pipeline / model >= 1.5 with the configured workers. Measured
in one run on this machine, at the lite input size and at 224 px, stage by stage (PNG decode as FDF's files need,
camera simulation, manipulation, resize + normalisation, collation) and end to end through the DataLoader.

    .venv/bin/python tools/bench_pipeline.py [--items 200] [--workers 0 1 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import time

import numpy as np
import torch
from PIL import Image

from aigfd_lite import resolve
from aigfd_lite.faces.corpus import build_corpus
from aigfd_lite.manipulate import LABELS, make_training_image
from aigfd_lite.models.initialisation import build_model
from aigfd_lite.pretext.batches import PretextDataset, to_tensor
from aigfd_lite.pretext.build import build_pretext_dataset
from aigfd_lite.train.loop import EpochSampler, TrainConfig, compute_losses


class _Uncached(PretextDataset):
    """A PretextDataset that re-renders the camera photo for every item (no per-face cache)."""

    def photo(self, face: int) -> np.ndarray:
        self._rendered.pop(face, None)
        return super().photo(face)


def rate(fn, n: int) -> float:
    """Items per second of ``fn(i)`` over ``n`` items (after one warm-up call)."""
    fn(0)
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def loader_rate(dataset, batch_size: int, workers: int, n_batches: int, seed: int = 42) -> float:
    sampler = EpochSampler(len(dataset), seed, 0)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=torch.utils.data.BatchSampler(sampler, batch_size, drop_last=True),
        num_workers=workers, prefetch_factor=4 if workers else None, persistent_workers=False)
    it = iter(loader)
    next(it)  # worker start-up is paid once per epoch; leave it out of the steady-state rate
    start, seen = time.perf_counter(), 0
    for _ in range(n_batches):
        try:
            images, *_ = next(it)
        except StopIteration:
            it = iter(loader)
            images, *_ = next(it)
        seen += len(images)
    return seen / (time.perf_counter() - start)


def model_rate(tcfg: TrainConfig, batch_size: int, size: int, steps: int) -> float:
    model = build_model("random", seed=0).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch_size, 3, size, size)
    tags = torch.rand(batch_size, 4)
    labels = torch.randint(0, 2, (batch_size,))
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        loss, _ = compute_losses(model(x), tags, labels, tcfg)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return batch_size / float(np.median(times[1:]))  # median: this machine's CPU is shared and noisy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=None)
    parser.add_argument("--model-steps", type=int, default=4)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    cfg = resolve("lite")
    corpus = build_corpus(cfg, progress=False)
    lite = TrainConfig.from_profile(cfg)
    workers = args.workers if args.workers is not None else sorted({0, lite.num_workers, os.cpu_count() or 1})
    print(f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, faces {len(corpus)}, "
          f"configured lite workers {lite.num_workers}")
    out: dict = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}

    # Stage by stage, single process (images/s)
    ds = build_pretext_dataset(lite, "train", corpus=corpus)
    n = min(args.items, len(ds))
    faces = ds.images
    pngs = []
    for img in faces[:n]:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        pngs.append(buf.getvalue())
    stages = {}
    stages["decode_png_128"] = rate(lambda i: np.asarray(Image.open(io.BytesIO(pngs[i % n])).convert("RGB")), n)
    rng = np.random.default_rng(0)
    stages["camera_simulate"] = rate(lambda i: ds._simulate(faces[i % n], ds.tags[i % n], rng), n)
    for kind in LABELS:
        stages[f"manipulate_{kind}"] = rate(
            lambda i, kind=kind: make_training_image(faces[i % n], ds.landmarks[i % n], kind, rng, symmetric=True), n)
    for size in (lite.input_size, 224):
        stages[f"resize_normalise_{size}"] = rate(lambda i, size=size: to_tensor(faces[i % n], size), n)
    items = [ds[i] for i in range(32)]
    stages["collate_batch32"] = rate(lambda i: torch.utils.data.default_collate(items), 50) * 32
    out["stages_images_per_s"] = stages
    for name, value in stages.items():
        print(f"  stage {name:28s} {value:9.1f} images/s  ({1000 / value:6.2f} ms/image)")

    # End to end through the DataLoader. "fresh": every item is rendered by the camera simulator and manipulated
    # anew (the cost without any cache); "pooled": the lite setting (camera rendering once per face, a seeded pool
    # of variants_per_kind manipulations per face and kind, filled before the loop as train() does).
    results = []
    for size in (lite.input_size, 224):
        m_rate = model_rate(TrainConfig.from_profile(cfg, input_size=size), lite.batch_size, size, args.model_steps)
        for mode in ("fresh", "pooled"):
            for w in workers:
                variants = lite.variants_per_kind if mode == "pooled" else None
                data = build_pretext_dataset(TrainConfig.from_profile(cfg, input_size=size, variants_per_kind=variants),
                                             "train", corpus=corpus)
                if mode == "pooled":
                    data.warm()
                else:
                    data.__class__ = _Uncached
                p_rate = loader_rate(data, lite.batch_size, w, max(2, n // lite.batch_size))
                row = dict(input_size=size, batch=lite.batch_size, workers=w, mode=mode,
                           pipeline_images_per_s=p_rate, model_images_per_s=m_rate, ratio=p_rate / m_rate)
                results.append(row)
                print(f"  {size:3d} px batch {lite.batch_size:3d} workers {w} {mode:6s}: pipeline {p_rate:7.1f} img/s, "
                      f"model fwd+bwd {m_rate:6.1f} img/s, ratio {p_rate / m_rate:5.2f}")
    out["end_to_end"] = results
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
