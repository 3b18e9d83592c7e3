"""The training run's data loader (chapter 4): one loader for the whole run, its workers started once.

Items depend on ``(seed, epoch, index)`` (:class:`aigfd_lite.pretext.PretextDataset`,
:class:`aigfd_lite.pretext.fdf_items.FDFPretextDataset`). Instead of a new loader (and new worker processes) per epoch,
:class:`RunBatchSampler` walks the global steps of the run from the resume point to the stop step, epoch after
epoch, and hands each item over as the number ``epoch * N + index``; :class:`EpochItems` decodes it inside the
worker (setting the worker's copy of the dataset to that epoch). Batches are those of
:class:`aigfd_lite.runtime.distributed.ShardedBatchSampler`, step for step, so a run resumes exactly wherever it stopped.

:func:`training_loader` sizes the workers to the CPUs this process may use (``min(num_workers, CPUs / local
processes)``), keeps them alive (``persistent_workers``), pins memory on CUDA and prefetches four batches per
worker. Items are uint8: the training step normalises them on the device (:func:`aigfd_lite.models.prepare_batch`).
Workers are forked after the dataset is built, so its numpy arrays (the FDF index, the landmark table) are shared
copy-on-write, never copied per worker.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from .distributed import epoch_order


class EpochItems(torch.utils.data.Dataset):
    """``dataset`` addressed by ``epoch * len(dataset) + index``: item ``index`` as drawn in ``epoch``."""

    def __init__(self, dataset: Any) -> None:
        self.dataset, self.n = dataset, len(dataset)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: int) -> Any:
        epoch, index = divmod(int(key), self.n)
        if hasattr(self.dataset, "set_epoch") and getattr(self.dataset, "epoch", None) != epoch:
            self.dataset.set_epoch(epoch)
        return self.dataset[index]


class RunBatchSampler(torch.utils.data.Sampler[list[int]]):
    """This rank's slice of every global batch from global step ``start`` to ``stop`` (exclusive), across epochs.

    Global step ``s`` is batch ``s mod S`` of epoch ``s // S`` (``S = n // batch_size`` steps per epoch), the same
    items as :class:`~aigfd_lite.runtime.distributed.ShardedBatchSampler` of that epoch; keys are ``epoch * n + index``.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start: int, stop: int, rank: int = 0,
                 world_size: int = 1) -> None:
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} is the global batch: it must divide evenly over "
                             f"{world_size} processes")
        self.steps_per_epoch = n // batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"{n} items cannot fill one batch of {batch_size}")
        self.n, self.batch_size, self.seed, self.start, self.stop = n, batch_size, seed, start, stop
        self.per_rank, self.rank = batch_size // world_size, rank

    def __iter__(self) -> Iterator[list[int]]:
        order, order_epoch = None, None
        for step in range(self.start, self.stop):
            epoch, k = divmod(step, self.steps_per_epoch)
            if epoch != order_epoch:  # one epoch's permutation at a time, as an int64 array
                order, order_epoch = np.asarray(epoch_order(self.n, self.seed, epoch), dtype=np.int64), epoch
            first = k * self.batch_size + self.rank * self.per_rank
            yield (order[first:first + self.per_rank] + epoch * self.n).tolist()

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def worker_count(requested: int, local_processes: int = 1) -> int:
    """DataLoader workers for one process: ``requested``, at most the CPUs this process may use divided among the
    node's training processes (``os.sched_getaffinity`` where available, else ``os.cpu_count()``)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(0, min(int(requested), max(1, cpus // max(1, local_processes))))


def training_loader(dataset: Any, *, batch_size: int, seed: int, start: int, stop: int, num_workers: int,
                    cuda: bool, rank: int = 0, world_size: int = 1,
                    local_processes: int = 1) -> torch.utils.data.DataLoader:
    """The run's loader from global step ``start`` to ``stop`` (see the module docstring)."""
    sampler = RunBatchSampler(len(dataset), batch_size, seed, start, stop, rank, world_size)
    workers = worker_count(num_workers, local_processes)
    return torch.utils.data.DataLoader(EpochItems(dataset), batch_sampler=sampler, num_workers=workers,
                                       pin_memory=cuda, persistent_workers=workers > 0,
                                       prefetch_factor=4 if workers else None)
