"""How much GPU memory one training step takes, measured on whatever device is at hand (chapter 4, "Does batch
256 fit a 16 GB GPU?"), and the gradient-accumulation setting that makes it fit.

Taught in chapter 4 (``book/04_pretraining.md``); used by :mod:`aigfd_lite.train.accumulation` to resolve
``accumulation_steps="auto"``. The book has no GPU, so the step is *measured* on the CPU and extrapolated:

* :func:`measure_step`: one forward and backward of the real network (``build_model``, the config's backbone and
  input size) in training mode under autocast, with every tensor the step allocates tracked by storage (a
  ``TorchDispatchMode``): the peak of live bytes (activations, autocast's half-precision weight copies, backward's
  temporaries; the parameters' gradients are left out and counted whole, as if all were alive at the peak) and,
  with ``torch.autograd.graph.saved_tensors_hooks``, the bytes autograd keeps for backward (a cross-check: at the
  end of the forward they are all alive, so their slope bounds the peak's from below). On a CPU the autocast
  dtype is bfloat16, a stand-in for a T4's float16 (CPU float16 convolutions are ~50x slower here): both take 2
  bytes per element, so the byte counts agree; cuDNN's kernels may keep slightly different tensors than the CPU's.
* :func:`estimate_training_memory`: that measurement at two or three batch sizes, fitted by a line (bytes per
  image and a fixed part), plus what the step holds outside it: fp32 parameters and gradients, AdamW's two fp32
  moments, the fp32 input batch, DDP's gradient buckets (one more fp32 copy of the gradients) when
  ``world_size > 1``; the GradScaler's state is a few scalars.
* :func:`memory_table`, :func:`fits`: the total for a micro-batch against a GPU's memory less the CUDA context
  (``context_gb``) and a margin for the caching allocator's fragmentation (``fragmentation``); both are
  assumptions, stated where they are used. Not counted: cuDNN's workspaces (bounded by the margin) and the
  optimiser step's temporaries (smaller than backward's peak, which they never overlap).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
import pandas as pd
from ..models import build_model
from ..runtime import choose_precision

GIB = 1024 ** 3
#: Assumed CUDA context (driver, cuBLAS and cuDNN kernels) on a T4 with torch: not allocator memory.
CONTEXT_GB = 1.0
#: Assumed caching-allocator fragmentation: the budget left after the context must cover the estimate x (1 + this).
FRAGMENTATION = 0.10


class _LiveBytes(TorchDispatchMode):
    """Every storage that ops allocate while active (storages present before are excluded), as a list of
    (storage id, +bytes / -bytes) events, so the peak can be taken with or without chosen storages."""

    def __init__(self, external: list[torch.Tensor]) -> None:
        super().__init__()
        self.external = {t.untyped_storage().data_ptr() for t in external}
        self.live: dict[int, tuple[Any, int, int]] = {}
        self.events: list[tuple[int, int]] = []

    def _sweep(self) -> None:
        for key in [k for k, (ref, _, _) in self.live.items() if ref.expired()]:
            _, size, uid = self.live.pop(key)
            self.events.append((uid, -size))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        # a torch internal, needed only while a measurement dispatches
        from torch.multiprocessing.reductions import StorageWeakRef

        out = func(*args, **(kwargs or {}))
        self._sweep()
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key and key not in self.live and key not in self.external:
                    self.live[key] = (StorageWeakRef(storage), storage.nbytes(), len(self.events))
                    self.events.append((len(self.events), storage.nbytes()))
        return out

    def peak(self, excluding: set[int] = frozenset()) -> int:
        """The peak of live bytes, leaving out the storages whose data pointers are in ``excluding`` (live now)."""
        skip = {self.live[k][2] for k in excluding if k in self.live}
        current = peak = 0
        for uid, delta in self.events:
            if uid not in skip:
                current += delta
                peak = max(peak, current)
        return peak


def _autocast_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda":
        return choose_precision(device).dtype
    return torch.bfloat16  # a T4's float16 stand-in: same 2 bytes per element


def measure_step(model: torch.nn.Module, batch: int, input_size: int, device: str | torch.device = "cpu",
                 dtype: torch.dtype | None = None, channels_last: bool = True) -> dict[str, int]:
    """Bytes of one training forward + backward of ``model`` (train mode, autocast) on ``batch`` random images:
    ``peak_bytes`` (live storages the step allocated, at their peak) and ``saved_bytes`` (kept for backward)."""
    device = torch.device(device)
    dtype = _autocast_dtype(device) if dtype is None else dtype
    model.train().to(device)
    x = torch.randn(batch, 3, input_size, input_size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    external = [*model.parameters(), *model.buffers(), x]
    own = {t.untyped_storage().data_ptr() for t in external}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = t.untyped_storage().data_ptr()
        if key not in own:
            saved[key] = t.untyped_storage().nbytes()
        return t

    model.zero_grad(set_to_none=True)
    with _LiveBytes(external) as tracker:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                out = model(x)
        heads = [v.float() for k, v in out.items() if k != "feature"]
        torch.stack(heads, 1).sum().backward()
        del out, heads
    grads = {p.grad.untyped_storage().data_ptr() for p in model.parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return {"batch": batch, "peak_bytes": tracker.peak(excluding=grads), "saved_bytes": sum(saved.values()),
            "peak_with_gradients_bytes": tracker.peak()}


def estimate_training_memory(tcfg: Any, batches: tuple[int, ...] = (1, 2), device: str | torch.device = "cpu",
                             model: torch.nn.Module | None = None) -> dict[str, Any]:
    """The GPU memory of one training step of ``tcfg`` (a :class:`~aigfd_lite.train.TrainConfig`) as a line in the
    micro-batch size: ``per_image_bytes`` and ``fixed_bytes`` (see the module docstring for what each holds),
    the raw ``measurements`` and, with three or more batch sizes, ``linearity`` (the largest relative deviation of
    a measured peak from the fitted line). ``model`` defaults to the config's network, randomly initialised."""
    if len(batches) < 2:
        raise ValueError("need at least two batch sizes to fit bytes per image")
    device = torch.device(device)
    if model is None:
        model = build_model("random", tcfg.feature_dim, tcfg.tasks, seed=0, backbone=tcfg.backbone)
    model = model.to(device).to(memory_format=torch.channels_last)
    rows = [measure_step(model, b, tcfg.input_size, device) for b in batches]
    b = np.array([r["batch"] for r in rows], float)
    peak, saved = (np.array([r[k] for r in rows], float) for k in ("peak_bytes", "saved_bytes"))
    slope, intercept = np.polyfit(b, peak, 1)
    saved_slope = np.polyfit(b, saved, 1)[0]
    linearity = float(np.max(np.abs(peak - (slope * b + intercept)) / peak)) if len(b) > 2 else float("nan")
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(t.numel() * t.element_size() for t in model.buffers())
    input_per_image = 3 * tcfg.input_size ** 2 * 4  # the fp32 batch on the device
    world = int(getattr(tcfg, "world_size", 1))
    fixed = {"parameters": params, "buffers": buffers, "gradients": params, "adamw_moments": 2 * params,
             "ddp_gradient_buckets": params if world > 1 else 0, "grad_scaler": 8,
             "step_intercept": float(intercept)}  # autocast's half-precision weight copies, ...
    return {"per_image_bytes": float(slope) + input_per_image, "activation_per_image_bytes": float(slope),
            "saved_per_image_bytes": float(saved_slope), "input_per_image_bytes": input_per_image,
            "fixed_bytes": float(sum(fixed.values())), "fixed": fixed, "linearity": linearity,
            "dtype": str(_autocast_dtype(device)).replace("torch.", ""), "device": device.type,
            "backbone": tcfg.backbone, "input_size": tcfg.input_size, "world_size": world,
            "measurements": rows}


def step_bytes(estimate: dict[str, Any], micro_batch: int) -> float:
    """Estimated peak bytes of a step whose forward holds ``micro_batch`` images at once."""
    return estimate["fixed_bytes"] + estimate["per_image_bytes"] * micro_batch


def fits(estimate: dict[str, Any], micro_batch: int, gpu_bytes: float, context_gb: float = CONTEXT_GB,
         fragmentation: float = FRAGMENTATION) -> bool:
    """Whether the step fits ``gpu_bytes`` after the CUDA context, with ``fragmentation`` to spare."""
    return step_bytes(estimate, micro_batch) * (1 + fragmentation) <= gpu_bytes - context_gb * GIB


def memory_table(estimate: dict[str, Any], batch_sizes: tuple[int, ...] = (32, 64, 128, 256),
                 gpu_gb: float = 16.0, context_gb: float = CONTEXT_GB, fragmentation: float = FRAGMENTATION):
    """One row per per-process micro-batch: MiB per image, estimated GiB, and whether it fits a ``gpu_gb`` GiB
    GPU (a T4 shows 15 GiB, 15,360 MiB, to nvidia-smi)."""
    rows = []
    for n in batch_sizes:
        total = step_bytes(estimate, n)
        rows.append({"images per forward": n, "MiB per image": estimate["per_image_bytes"] / 2 ** 20,
                     "estimated GiB": total / GIB,
                     "GiB with context + margin": total * (1 + fragmentation) / GIB + context_gb,
                     f"fits {gpu_gb:g} GiB": fits(estimate, n, gpu_gb * GIB, context_gb, fragmentation)})
    return pd.DataFrame(rows)


def with_world_size(tcfg: Any, world_size: int) -> Any:
    """``tcfg`` as one of ``world_size`` processes sees it (DDP adds gradient buckets; the batch is split)."""
    return dataclasses.replace(tcfg, world_size=world_size)
