"""Tests of aigfd_lite.runtime.data_loader: one loader for the run, the same batches as the per-epoch samplers."""
from __future__ import annotations

import pytest
import torch

from aigfd_lite.runtime.data_loader import EpochItems, RunBatchSampler, training_loader, worker_count
from aigfd_lite.runtime.distributed import ShardedBatchSampler


@pytest.mark.parametrize("world, rank", [(1, 0), (2, 1)])
def test_run_sampler_walks_the_epochs_samplers_step_by_step(world, rank):
    n, batch, seed = 50, 8, 4  # 6 steps per epoch
    expected = []
    for epoch in range(3):
        expected += [[epoch * n + i for i in b] for b in ShardedBatchSampler(n, batch, seed, epoch, 0, rank, world)]
    run = RunBatchSampler(n, batch, seed, start=0, stop=18, rank=rank, world_size=world)
    assert list(run) == expected and len(run) == 18
    resumed = RunBatchSampler(n, batch, seed, start=4, stop=15, rank=rank, world_size=world)
    assert list(resumed) == expected[4:15]  # resuming mid-epoch needs only the global step
    with pytest.raises(ValueError, match="cannot fill"):
        RunBatchSampler(5, 8, 0, 0, 1)


class Items(torch.utils.data.Dataset):
    epoch = 0

    def __len__(self):
        return 10

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __getitem__(self, i):
        return torch.tensor([self.epoch, i])


def test_epoch_items_set_the_epoch_in_each_worker():
    loader = training_loader(Items(), batch_size=5, seed=0, start=0, stop=6, num_workers=2, cuda=False)
    assert loader.num_workers == min(2, worker_count(2)) and loader.persistent_workers
    seen = torch.cat(list(loader))
    assert seen[:, 0].tolist() == [0] * 10 + [1] * 10 + [2] * 10
    assert sorted(seen[:10, 1].tolist()) == list(range(10))
    assert EpochItems(Items())[23].tolist() == [2, 3]


def test_worker_count_is_capped_by_the_cpus():
    assert worker_count(0) == 0
    assert 1 <= worker_count(10_000) <= 10_000
    assert worker_count(10_000, local_processes=10_000) == 1
