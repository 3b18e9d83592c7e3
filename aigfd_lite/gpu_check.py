"""Measurements behind ``tools/gpu_check.py``: the book's GPU estimates (chapter 4) measured on the device at hand.

Taught in chapter 4 (``book/04_pretraining.md``, "Running the full profile on a GPU"), which shows the committed
results beside the estimates (:mod:`aigfd_lite.train.measurements`). Every function runs the package's own code on
synthetic inputs and takes a ``deadline`` (``time.perf_counter()`` value): a loop stops measuring when it passes it
and says so (``"truncated": True``), so a slow device gives fewer steps instead of overrunning.

* :func:`time_training`: the training step (:func:`aigfd_lite.train.train_step`: Eq. 6 over the whole batch,
  micro-batches through :mod:`aigfd_lite.train.accumulation`) at a given precision: images/s and peak allocated memory.
* :func:`stand_in_landmarks`: a 68-point table for a synthetic tree (one template face shape for every face), so
  the on-the-fly manipulations run where no landmarker is installed.
* :func:`pipeline_rate`: the full profile's loader (:class:`aigfd_lite.pretext.fdf_items.FDFPretextDataset` through
  :func:`aigfd_lite.runtime.data_loader.training_loader`): decode, manipulate, resize in workers, normalise on the device.
* :func:`gmm_timing`: :class:`aigfd_lite.detector.GMMDetector` fit seconds and scoring rate on synthetic features.
* :func:`ddp_worker` (``python -m aigfd_lite.gpu_check OUT CONFIG first`` under torchrun): steps with
  SyncBatchNorm under DDP, and a run of :func:`aigfd_lite.train.train` that SIGKILLs itself (resumed by the tool).
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .runtime import (Precision, choose_precision, init_from_env, prepare, processes, shutdown, training_loader,
                      worker_count)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_batch(batch: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 (batch, size, size, 3) images as a loader gives them, camera-like tags, half manipulated."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch, size, size, 3), generator=g, dtype=torch.uint8)
    low, high = torch.tensor([1.4, 1 / 4000, 18.0, 100.0]), torch.tensor([16.0, 1 / 15, 200.0, 3200.0])
    return images, low + (high - low) * torch.rand(batch, 4, generator=g), torch.arange(batch) % 2


def time_training(tcfg: Any, device: torch.device, precision: Precision, *, steps: int, deadline: float,
                  warmup: int = 2) -> dict[str, Any]:
    """Median images/s of :func:`~aigfd_lite.train.train_step` (``tcfg.accumulation_steps`` micro-batches) on one
    synthetic batch of ``tcfg.batch_size`` at ``tcfg.input_size``, data loading excluded, and the peak of
    ``torch.cuda.max_memory_allocated`` over the steps (None on a CPU). ``warmup`` steps (cuDNN's autotuning) are
    not timed."""
    # imported here, not at the top: `import aigfd_lite.gpu_check` stays free of torchvision
    from .models import build_model, prepare_batch
    from .train import train_step

    cuda = device.type == "cuda"
    model = build_model("random", tcfg.feature_dim, tcfg.tasks, seed=tcfg.seed, backbone=tcfg.backbone).to(device)
    model = model.to(memory_format=torch.channels_last).train()
    torch.backends.cudnn.benchmark = cuda
    optimizer = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, betas=tcfg.betas, eps=tcfg.eps,
                                  weight_decay=tcfg.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.grad_scaler)
    images, tags, labels = synthetic_batch(tcfg.batch_size, tcfg.input_size, tcfg.seed)
    if cuda:
        images = images.pin_memory()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    times, loss, truncated = [], float("nan"), False
    for k in range(warmup + steps):
        if k > warmup and time.perf_counter() > deadline:
            truncated = True
            break
        start = time.perf_counter()
        x = prepare_batch(images, device, tcfg.input_size, True)
        loss, _ = train_step(model, x, tags.to(device), labels.to(device), tcfg, precision, optimizer, scaler)
        _sync(device)
        if k >= warmup:
            times.append(time.perf_counter() - start)
        loss = float(loss.detach())
    if not times:
        raise TimeoutError("no step finished before the deadline")
    step_s = float(np.median(times))
    return {"batch": tcfg.batch_size, "input_size": tcfg.input_size, "backbone": tcfg.backbone,
            "micro_batches": tcfg.accumulation_steps, "dtype": str(precision.dtype).replace("torch.", ""),
            "grad_scaler": precision.grad_scaler, "steps_timed": len(times), "truncated": truncated,
            "step_s": step_s, "images_per_s": tcfg.batch_size / step_s, "loss": loss,
            "peak_allocated_bytes": int(torch.cuda.max_memory_allocated(device)) if cuda else None}


def _template_68() -> np.ndarray:
    """One plausible 68-point face (iBUG order: jaw, brows, nose, eyes, mouth) in crop-relative units."""
    def ellipse(cx: float, cy: float, rx: float, ry: float, degrees: np.ndarray) -> np.ndarray:
        t = np.radians(degrees)
        return np.stack([cx + rx * np.cos(t), cy - ry * np.sin(t)], 1)

    jaw = ellipse(0.5, 0.45, 0.38, 0.45, np.linspace(180, 360, 17))
    brows = np.stack([np.r_[np.linspace(0.2, 0.42, 5), np.linspace(0.58, 0.8, 5)], np.full(10, 0.33)], 1)
    nose = np.r_[np.stack([np.full(4, 0.5), np.linspace(0.38, 0.58, 4)], 1),
                 np.stack([np.linspace(0.42, 0.58, 5), np.full(5, 0.62)], 1)]
    eye_angles = np.array([180, 120, 60, 0, 300, 240])
    eyes = np.r_[ellipse(0.32, 0.42, 0.07, 0.03, eye_angles), ellipse(0.68, 0.42, 0.07, 0.03, eye_angles)]
    mouth = np.r_[ellipse(0.5, 0.76, 0.13, 0.05, 180 - 30 * np.arange(12)),
                  ellipse(0.5, 0.76, 0.09, 0.025, 180 - 45 * np.arange(8))]
    return np.concatenate([jaw, brows, nose, eyes, mouth]).astype(np.float32)


def stand_in_landmarks(layout: Any, backend: str = "dlib", save: bool = False) -> Any:
    """The landmark table of ``layout`` with :func:`_template_68` for every face (written where
    :func:`aigfd_lite.fdf.landmarks.load_or_compute` looks for ``backend`` when ``save``)."""
    # imported here, not at the top: `import aigfd_lite.gpu_check` stays free of scipy
    from .fdf import VERSION, WORK_SIZE, FaceLandmarks, landmarks_path

    points = np.broadcast_to(_template_68().astype(np.float16), (len(layout), 68, 2)).copy()
    table = FaceLandmarks(points, {"version": VERSION, "backend": "stand-in", "data_hash": layout.data_hash,
                                   "work_size": WORK_SIZE, "done": len(layout), "skips": {}})
    if save:
        table.save(landmarks_path(layout, backend))
    return table


def synthetic_tree(workdir: Path, n: int) -> Path:
    """An official-layout training tree of ``n`` faces (128 px, hard links) under ``workdir``, built once."""
    # imported here, not at the top: `import aigfd_lite.gpu_check` stays free of scipy
    from .data import write_synthetic_tree

    root = Path(workdir) / f"fdf_{n}"
    if not (root / "done").is_file():
        write_synthetic_tree(root, n, size=128)
        (root / "done").write_text("ok\n")
    return root


def pipeline_rate(root: Path, *, input_size: int, batch: int, workers: int, batches: int, device: torch.device,
                  deadline: float) -> dict[str, Any]:
    """Images/s the full profile's loader delivers to ``device`` (on the fly manipulations, uint8 to the device,
    normalised there), the first batch (worker start-up) left out; also the seconds to index the tree."""
    # imported here, not at the top: `import aigfd_lite.gpu_check` stays free of scipy
    from .fdf import FDFLayout
    from .pretext import FDFPretextDataset
    from .models import prepare_batch

    start = time.perf_counter()
    layout = FDFLayout(root, require_manipulated=False, progress=False)
    index_s = time.perf_counter() - start
    data = FDFPretextDataset(layout, input_size, landmarks=stand_in_landmarks(layout), seed=0)
    loader = training_loader(data, batch_size=batch, seed=0, start=0, stop=batches + 1, num_workers=workers,
                             cuda=device.type == "cuda")
    seen, truncated, kinds = 0, False, Counter()
    for k, (images, _tags, _labels, kind) in enumerate(loader):
        x = prepare_batch(images, device, input_size, True)
        _sync(device)
        kinds.update(kind.tolist())
        if k == 0:
            start = time.perf_counter()
            continue
        seen += len(x)
        if time.perf_counter() > deadline:
            truncated = True
            break
    seconds = time.perf_counter() - start
    del loader
    if not seen:
        raise TimeoutError("no batch after the first arrived before the deadline")
    return {"faces": len(layout), "index_s": index_s, "workers": worker_count(workers), "batch": batch,
            "input_size": input_size, "images": seen, "truncated": truncated, "images_per_s": seen / seconds,
            "kinds_drawn": {str(k): v for k, v in sorted(kinds.items())}}


def synthetic_features(n: int, dim: int, k: int, seed: int = 0) -> np.ndarray:
    """``n`` float32 rows from a seeded mixture of ``k`` Gaussians with low-rank-plus-noise covariances."""
    rng = np.random.default_rng(seed)
    rank = min(32, dim)
    labels = rng.integers(0, k, n)
    centres, loadings = rng.normal(0, 3, (k, dim)), rng.normal(0, 1, (k, dim, rank)) / np.sqrt(rank)
    X = 0.3 * rng.normal(0, 1, (n, dim))
    for c in range(k):
        rows = labels == c
        X[rows] += centres[c] + rng.normal(0, 1, (int(rows.sum()), rank)) @ loadings[c].T
    return X.astype(np.float32)


def gmm_timing(n: int, dim: int, settings: dict[str, Any]) -> dict[str, Any]:
    """Fit seconds and scoring rate (rows/s of ``score_samples``) of a GMMDetector with ``settings``."""
    # imported here, not at the top: `import aigfd_lite.gpu_check` stays free of pandas, sklearn
    from .detector import GMMDetector

    X = synthetic_features(n, dim, int(settings.get("n_components", 8)))
    start = time.perf_counter()
    detector = GMMDetector(**settings).fit(X)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    scores = detector.score_samples(X)
    score_s = time.perf_counter() - start
    return {"n": n, "dim": dim, "n_components": detector.n_components, "covariance": detector.covariance_type,
            "fit_s": fit_s, "em_iterations": int(detector.gmm_.n_iter_), "converged": bool(detector.gmm_.converged_),
            "score_rows_per_s": n / score_s, "finite_scores": bool(np.isfinite(scores).all())}


class SyntheticPretext(torch.utils.data.Dataset):
    """Seeded pretext items ``(uint8 image, tags, label, kind)`` that depend on (epoch, index) only."""

    def __init__(self, n: int, size: int, seed: int = 0) -> None:
        self.n, self.size, self.seed, self.epoch = n, size, seed, 0

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        images, tags, labels = synthetic_batch(1, self.size, seed=self.seed + 7919 * self.epoch + index)
        return images[0], tags[0], labels[0], labels[0]


def ddp_worker(out: Path, tcfg_json: dict[str, Any], phase: str) -> None:
    """One torchrun process of part (e), ``phase`` "first": DDP steps with SyncBatchNorm on NCCL (``sync.json``;
    in one process torch's conversion is applied here, as :func:`~aigfd_lite.runtime.distributed.convert_batchnorm` does
    for several), then run ``b`` (:func:`kill_resume_runs`), which SIGKILLs itself after 3 steps."""
    # imported here, not at the top: `import aigfd_lite.gpu_check` stays free of torchvision
    from .models import build_model, prepare_batch
    from .train import TrainConfig, train, train_step

    if phase != "first":
        raise ValueError(f"unknown phase {phase!r}: the worker has one phase, 'first'")
    tcfg = TrainConfig.from_json(tcfg_json)
    procs, device = init_from_env(tcfg.device)
    runs = dict(tcfg_json.get("gpu_check_runs", {}))
    made = not dist.is_initialized()
    if made:  # one process: the package needs no group; the check makes one
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    procs = processes()
    model = build_model("random", tcfg.feature_dim, tcfg.tasks, seed=tcfg.seed, backbone=tcfg.backbone)
    model = model.to(device)
    if procs.world_size == 1 and procs.backend == "nccl":  # what convert_batchnorm does on NCCL
        module = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = nn.parallel.DistributedDataParallel(module, device_ids=[device.index])
    else:
        module, net = prepare(model, "sync", procs, device)
        net = nn.parallel.DistributedDataParallel(module) if net is module else net
    precision = choose_precision(device, tcfg.amp)
    optimizer = torch.optim.AdamW(module.parameters(), lr=tcfg.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.grad_scaler)
    images, tags, labels = synthetic_batch(tcfg.batch_size // procs.world_size, tcfg.input_size, procs.rank)
    times, losses = [], []
    for _ in range(int(runs.get("sync_steps", 3))):
        start = time.perf_counter()
        x = prepare_batch(images, device, tcfg.input_size, True)
        loss, _ = train_step(net, x, tags.to(device), labels.to(device), tcfg, precision, optimizer, scaler)
        _sync(device)
        times.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
    layers = Counter(type(m).__name__ for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm))
    if procs.main:
        (out / "sync.json").write_text(json.dumps({
            "backend": procs.backend, "world_size": procs.world_size, "batchnorm_layers": dict(layers),
            "steps": len(times), "step_s_after_first": float(np.median(times[1:] or times)),
            "losses": losses, "finite": bool(np.isfinite(losses).all())}))
    if made:
        dist.destroy_process_group()
    small, data = kill_resume_runs(tcfg, runs)  # stopped by SIGKILL after 3 steps; tools/gpu_check.py resumes it
    train(dataclasses.replace(small, stop_after_steps=3), out / "b", dataset=data, progress=False)
    shutdown()


def kill_resume_runs(tcfg: Any, runs: dict[str, Any]) -> tuple[Any, SyntheticPretext]:
    """The small run of the kill-and-resume check: ``runs``' batch, size and items, one epoch, checkpoints every
    3 steps, and its synthetic data."""
    small = dataclasses.replace(tcfg, batch_size=int(runs.get("batch", 8)), input_size=int(runs.get("size", 32)),
                                epochs=1, checkpoint_every_steps=3, num_workers=0, accumulation_steps=1)
    return small, SyntheticPretext(int(runs.get("items", 48)), small.input_size, seed=small.seed)

if __name__ == "__main__":
    ddp_worker(Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text()), sys.argv[3])
