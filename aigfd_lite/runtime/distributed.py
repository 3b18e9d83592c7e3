"""Pretraining beyond one GPU: torchrun processes, seeded sharding, the global batch, BatchNorm and mixed precision.

Taught in chapter 4 (``book/04_pretraining.md``, "Several GPUs and nodes"); used by :mod:`aigfd_lite.train` and by
:func:`aigfd_lite.models.extract_features`. Everything here is a no-op in a single process, so one code path serves
the notebook, ``python -m aigfd_lite.train`` and ``torchrun --nproc_per_node N -m aigfd_lite.train``.

* :func:`choose_precision`: fp32 on CPU; on CUDA fp16 with a GradScaler below compute capability 8.0 (T4, V100)
  and bf16 from 8.0 (A100, L4, H100). Decided by capability: torch calls bf16 "supported" on a T4, where it is
  emulated and slow.
* :func:`init_from_env`: joins the process group torchrun describes (``nccl`` on GPUs, ``gloo`` on CPUs).
* :class:`ShardedBatchSampler`: the single-process run's seeded batches, each cut into one slice per rank, so the
  global batch (and mid-epoch resume) does not depend on the number of processes.
* :func:`gather`: all-gathers the ranks' scores with their gradients, so Eq. 6's all-pairs ranking loss is formed
  over the global batch, exactly as in one process (``batch_size`` 256 on 8 GPUs: 32,640 pairs, not 8 x 496).
* :func:`convert_batchnorm`: ``"sync"`` normalises over the global batch (``torch.nn.SyncBatchNorm`` on NCCL; on
  gloo/CPU, where SyncBatchNorm does not run, :class:`GlobalBatchNorm`); ``"local"`` keeps per-rank statistics.
* :func:`gather_rows`: each rank's slice of a feature matrix, gathered on rank 0.
"""
from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Precision:
    """How a forward pass runs: the autocast dtype (``float32``: no autocast) and whether a GradScaler is needed."""

    dtype: torch.dtype = torch.float32
    grad_scaler: bool = False

    def autocast(self, device: torch.device) -> torch.autocast:
        return torch.autocast(device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)


def choose_precision(device: str | torch.device, enabled: bool = True) -> Precision:
    """Mixed precision for ``device``: fp32 on CPU (or ``enabled=False``); on CUDA bf16 from compute capability 8.0,
    else fp16 with a GradScaler (fp16's narrow exponent range underflows small gradients without loss scaling)."""
    device = torch.device(device)
    if not enabled or device.type != "cuda":
        return Precision()
    major, _minor = torch.cuda.get_device_capability(device)
    if major >= 8:
        return Precision(torch.bfloat16, grad_scaler=False)
    return Precision(torch.float16, grad_scaler=True)


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes (rank 0 of 1 outside torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> range:
        """This rank's contiguous slice of ``n`` items (sizes differ by at most one)."""
        bounds = np.linspace(0, n, self.world_size + 1).round().astype(int)
        return range(int(bounds[self.rank]), int(bounds[self.rank + 1]))


def processes() -> Processes:
    """The current process group (a single process if none was initialised)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Processes()
    return Processes(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_backend())


def init_from_env(device: str = "auto") -> tuple[Processes, torch.device]:
    """Join the process group described by torchrun's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
    ``MASTER_ADDR``, ``MASTER_PORT``) once, and return it with this rank's device. A single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() if device == "auto" else torch.device(device).type == "cuda"
    if world > 1 and not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if cuda else "gloo")
    procs = processes()
    if not cuda:
        return procs, torch.device("cpu" if device == "auto" else device)
    if procs.world_size > 1 or device in ("auto", "cuda"):
        return procs, torch.device("cuda", procs.local_rank)
    return procs, torch.device(device)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if processes().world_size > 1:
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (e.g. a checkpoint read on rank 0: no shared filesystem needed)."""
    if processes().world_size == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The seeded permutation of ``n`` items for one epoch (the same in every process and every resumed run)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


class ShardedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Rank ``rank``'s slice of each global batch of one epoch, from global step ``start_step`` on.

    Global batch ``k`` is ``epoch_order[k B : (k + 1) B]`` (``B = batch_size``, incomplete last batch dropped), as
    in one process; rank ``r`` of ``W`` takes its ``r``-th block of ``B / W`` items. Resuming needs only the
    global step, whatever the number of processes before and after.
    """

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, start_step: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} is the global batch: it must divide evenly over "
                             f"{world_size} processes")
        self.order, self.batch_size, self.start_step = epoch_order(n, seed, epoch), batch_size, start_step
        self.per_rank, self.rank = batch_size // world_size, rank

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, len(self.order) // self.batch_size):
            first = step * self.batch_size + self.rank * self.per_rank
            yield self.order[first:first + self.per_rank]

    def __len__(self) -> int:
        return max(0, len(self.order) // self.batch_size - self.start_step)


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0; backward: the sum over ranks of the gathered gradient, this rank's block of it."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.rank, ctx.n = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # every rank's loss depends on every rank's scores
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]


def gather(x: torch.Tensor, grad: bool = True) -> torch.Tensor:
    """The global batch of a per-rank tensor (ranks in order, equal sizes), differentiable when ``grad``.

    Each rank then computes the same global loss ``L``; the backward sum over ranks makes each rank's gradient
    ``W dL/dtheta`` and DDP's average over the ``W`` ranks brings it back to ``dL/dtheta``, the one-process gradient.
    """
    if processes().world_size == 1:
        return x
    if grad:
        return _GatherWithGrad.apply(x)
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch for backends where ``torch.nn.SyncBatchNorm`` does not run (gloo on CPU).

    In training, the mean and the biased variance are all-reduced sums (two passes, differentiable), so forward,
    backward and running statistics equal those of one BatchNorm over the whole batch in one process. Evaluation
    uses the running statistics, as usual.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or processes().world_size == 1:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        work = x if x.dtype == torch.float64 else x.float()
        count = work.new_tensor([x.numel() // x.shape[1]])
        first = _AllReduceSum.apply(torch.cat([work.sum(dims), count]))
        n = first[-1].detach()
        mean = first[:-1] / n
        centred = work - mean.view(shape)
        var = _AllReduceSum.apply((centred * centred).sum(dims)) / n
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - factor).add_(mean.detach(), alpha=factor)
                unbiased = var.detach() * n / max(float(n) - 1.0, 1.0)
                self.running_var.mul_(1 - factor).add_(unbiased, alpha=factor)
        return y.to(x.dtype)


def _to_global_batchnorm(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        like = next(iter(module.state_dict().values()), torch.empty(0))  # keep device and dtype (float64 checks)
        out = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats, device=like.device,
                              dtype=like.dtype if like.is_floating_point() else None)
        out.load_state_dict(module.state_dict())
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _to_global_batchnorm(child))
    return out


def convert_batchnorm(model: nn.Module, mode: str, procs: Processes) -> nn.Module:
    """The module the ranks train: ``model`` itself in one process; else a copy whose BatchNorm layers are
    ``torch.nn.SyncBatchNorm`` (``mode="sync"`` on NCCL), :class:`GlobalBatchNorm` (``"sync"`` elsewhere) or
    unchanged (``"local"``: per-rank statistics over ``B / W`` images, DDP's default). State-dict keys are kept."""
    if mode not in ("sync", "local"):
        raise ValueError(f"batchnorm must be 'sync' or 'local', got {mode!r}")
    if procs.world_size == 1:
        return model
    module = copy.deepcopy(model)
    if mode == "local":
        return module
    if procs.backend == "nccl":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _to_global_batchnorm(module)


def prepare(model: nn.Module, batchnorm: str, procs: Processes, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """``(module, net)``: the module whose parameters the optimiser updates and whose state a checkpoint stores
    (BatchNorm converted, see :func:`convert_batchnorm`), and what the loop calls: ``module`` itself in one
    process, else ``module`` wrapped in DistributedDataParallel (gradients averaged over the ranks)."""
    module = convert_batchnorm(model, batchnorm, procs)
    if procs.world_size == 1:
        return module, module
    ids = [device.index] if device.type == "cuda" else None
    return module, nn.parallel.DistributedDataParallel(module, device_ids=ids)


def gather_rows(rows: np.ndarray, n: int) -> np.ndarray:
    """Rank 0: the ``(n, ...)`` rows of all ranks' :meth:`Processes.shard` slices, in order; other ranks: an
    empty ``(0, ...)`` array (fit the detector on rank 0)."""
    procs = processes()
    if procs.world_size == 1:
        return rows
    longest = -(-n // procs.world_size) + 1
    device = torch.device("cuda", procs.local_rank) if procs.backend == "nccl" else torch.device("cpu")
    padded = torch.zeros((longest, *rows.shape[1:]), dtype=torch.from_numpy(rows[:0]).dtype, device=device)
    padded[:len(rows)] = torch.from_numpy(rows).to(device)
    parts = [torch.empty_like(padded) for _ in range(procs.world_size)] if procs.main else None
    dist.gather(padded, parts, dst=0)
    if not procs.main:
        return rows[:0]
    sizes = [len(Processes(r, procs.world_size).shard(n)) for r in range(procs.world_size)]
    return np.concatenate([p[:k].cpu().numpy() for p, k in zip(parts, sizes)])
