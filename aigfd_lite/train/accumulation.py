"""Gradient accumulation that keeps Eq. 6's ranking pairs over the whole batch (chapter 4, "Does batch 256 fit a
16 GB GPU?").

Taught in chapter 4 (``book/04_pretraining.md``); used by :func:`aigfd_lite.train.train_step` when
``accumulation_steps > 1``. Plain accumulation (a loss per micro-batch, gradients summed) would change the method:
the ranking loss (Eq. 2-3, summed over all pairs of a batch in Eq. 6) does not decompose over micro-batches, so 2
micro-batches of 128 would rank 2 x 8,128 pairs instead of 32,640, and never a pair across them. The two-pass
method of GradCache (Gao et al. 2021) keeps every pair:

1. every micro-batch goes forward *without* autograd; the five head outputs of the whole batch (a few numbers per
   image) are kept, gathered over the ranks as in :func:`aigfd_lite.train.loop.global_batch_loss`;
2. Eq. 6 is computed once over those outputs, made leaf tensors, and its backward gives ``dL/d outputs``;
3. every micro-batch goes forward again *with* autograd and ``torch.autograd.backward(outputs, dL/d outputs)``
   sends those gradients through the network; the chain rule makes the sum over micro-batches the full-batch
   gradient. Under DDP the gradients are averaged over the ranks only after the last micro-batch (``no_sync``).

What differs from one big batch: BatchNorm normalises over each micro-batch (like per-GPU BatchNorm), so the
result is not the same computation and ``accumulation_steps`` is part of a run's identity; the running statistics
are updated once per micro-batch (pass 1 runs with them saved and restored); each micro-batch's random state is
replayed in pass 2 (the book's networks have no dropout: ResNet-50 has none, MobileNetV2's is removed); compute
costs one extra forward per step. Memory: one micro-batch's activations at a time.
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ..runtime import Precision, broadcast_object, gather
from .step import HEADS, _at_least_float32, compute_losses
from .gpu_memory import estimate_training_memory, fits, with_world_size


@contextlib.contextmanager
def frozen_batchnorm_statistics(net: nn.Module) -> Iterator[None]:
    """Run a block in training mode without changing any BatchNorm's running statistics (restored on exit)."""
    layers = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [{k: v.clone() for k, v in m.named_buffers(recurse=False)} for m in layers]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, buffers in zip(layers, saved):
                for k, v in m.named_buffers(recurse=False):
                    v.copy_(buffers[k])


def _rng_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _set_rng_state(state: tuple[torch.Tensor, torch.Tensor | None], device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def two_pass_backward(net: nn.Module, images: torch.Tensor, tags: torch.Tensor, labels: torch.Tensor, tcfg: Any,
                      precision: Precision, scaler: torch.amp.GradScaler,
                      steps: int) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 6 over the global batch and its (scaled) gradient in ``.grad``, holding one micro-batch of
    ``len(images) / steps`` images in autograd at a time. Returns the loss and its terms, as
    :func:`aigfd_lite.train.loop.global_batch_loss` does."""
    if len(images) % steps:
        raise ValueError(f"{len(images)} images per process do not split into {steps} equal micro-batches")
    size, device = len(images) // steps, images.device
    parts = [slice(j * size, (j + 1) * size) for j in range(steps)]

    def heads_of(part: slice) -> torch.Tensor:
        with precision.autocast(device):
            out = net(images[part])
        return torch.stack([_at_least_float32(out[name]) for name in HEADS], 1)

    states, outputs = [], []
    with torch.no_grad(), frozen_batchnorm_statistics(net):  # pass 1: outputs only
        for part in parts:
            states.append(_rng_state(device))
            outputs.append(heads_of(part))
    local = torch.cat(outputs).requires_grad_(True)
    heads = gather(local)  # its backward sums over the ranks, as in global_batch_loss
    tags, labels = gather(tags, grad=False), gather(labels, grad=False)
    loss, terms = compute_losses({name: heads[:, k] for k, name in enumerate(HEADS)}, tags, labels, tcfg)
    scaler.scale(loss).backward()
    for j, part in enumerate(parts):  # pass 2: the same forward, now with autograd, fed dL/d outputs
        _set_rng_state(states[j], device)
        last = j == steps - 1
        with contextlib.nullcontext() if last or not hasattr(net, "no_sync") else net.no_sync():
            torch.autograd.backward(heads_of(part), local.grad[part])
    return loss, terms


def resolve_accumulation(tcfg: Any, device: torch.device, world_size: int, gpu_bytes: int | None = None,
                         estimate: dict[str, Any] | None = None) -> int:
    """The accumulation steps a run uses: an integer setting as given (checked), ``"auto"`` the fewest steps
    whose micro-batch fits this GPU (:func:`aigfd_lite.train.gpu_memory.fits`, measured on ``device``); 1 on a CPU."""
    per_rank = tcfg.batch_size // world_size
    value = tcfg.accumulation_steps
    if value != "auto":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1 or per_rank % value:
            raise ValueError(f"accumulation_steps must be 'auto' or a positive integer dividing the "
                             f"{per_rank} images per process, got {value!r}")
        return value
    if device.type != "cuda" and gpu_bytes is None:
        return 1
    if gpu_bytes is None:
        gpu_bytes = torch.cuda.get_device_properties(device).total_memory
    if estimate is None:
        estimate = estimate_training_memory(with_world_size(tcfg, world_size), device=device)
    for steps in (k for k in range(1, per_rank + 1) if per_rank % k == 0):
        if fits(estimate, per_rank // steps, gpu_bytes):
            return steps
    raise ValueError(f"not even one image per forward fits {gpu_bytes / 2 ** 30:.1f} GiB")


def with_resolved_accumulation(tcfg: Any, device: torch.device | str, world_size: int, main: bool = True) -> Any:
    """``tcfg`` with its ``accumulation_steps`` resolved (:func:`resolve_accumulation`) on the main process and sent
    to the others: the one place ``"auto"`` becomes a number, before a run is compared with a stored one
    (:func:`aigfd_lite.train.fetch_or_train`, :func:`aigfd_lite.long_runs.confirm_training`) and when it trains."""
    steps = resolve_accumulation(tcfg, torch.device(device), world_size) if main else None
    return dataclasses.replace(tcfg, accumulation_steps=broadcast_object(steps))
