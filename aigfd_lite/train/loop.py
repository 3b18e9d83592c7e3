"""Self-supervised pretraining (Sec. II-A, Eq. 6): a resumable training loop for CPU (lite), one GPU and torchrun.

Taught in chapter 4 (``book/04_pretraining.md``). Public API, used by chapters 5 and 6:

* ``fetch_or_train(cfg, run_name="ours", tasks=("exif", "manipulation"), progress=True, **overrides)
  -> (model, log)``: the trained :class:`aigfd_lite.models.ExifManipNet` of profile ``cfg`` (a
  :class:`aigfd_lite.profiles.Profile`) and its per-step log (a DataFrame). Loads the finished checkpoint of
  ``<build_dir>/checkpoints/<profile>/<run_name>/`` when present (and trained with the same settings), else trains,
  resuming a partial run. ``tasks=("exif",)`` or ``("manipulation",)`` trains the ablations of Tables II-III; give
  each its own ``run_name``. The model is returned in eval mode on the CPU.
* ``load_trained(cfg, run_name) -> model``: the finished model, or ``FileNotFoundError``.
* ``evaluate_pretext(model, dataset, ...) -> dict``: held-out pairwise ranking accuracy per tag, manipulation accuracy;
  ``bootstrap_intervals(result)`` their face-level bootstrap intervals (both live in :mod:`aigfd_lite.pretext`).
* Features for the detector: :func:`aigfd_lite.models.extract_features` (``input_size=cfg.input_size``).

One flat, typed configuration (:class:`TrainConfig`, made from the profile in :mod:`aigfd_lite.train.run_config`; every
value checked by :mod:`aigfd_lite.train.run_settings` when it is made); AdamW with the paper's learning rate and the published
code's betas, eps and weight decay, and a per-step cosine schedule; loss = four all-pairs ranking losses +
manipulation loss (Eq. 6), each term logged. On CUDA: bf16 autocast from compute capability 8.0, fp16 with a
GradScaler below (:func:`aigfd_lite.runtime.distributed.choose_precision`); channels_last; pinned memory; worker processes. A
step is :func:`train_step`; with ``accumulation_steps > 1`` (the full profile's ``"auto"``: the fewest that fit the
GPU's memory, :mod:`aigfd_lite.train.gpu_memory`) it runs in micro-batches whose ranking pairs still span the whole batch
(:mod:`aigfd_lite.train.accumulation`). A checkpoint (model, optimiser, scheduler, scaler, RNG states, step, data position)
is written atomically every epoch (``checkpoint_every_epochs``) and every ``checkpoint_every_steps`` steps by the
resumable loop BLADES shares (:mod:`aigfd_lite.train.resumable`); rerunning resumes exactly, so killing the process loses at most the steps since the last checkpoint. One trainer at a time
holds a run folder (:mod:`aigfd_lite.train.run_lock`); a damaged checkpoint or log is reported, never overwritten
(:mod:`aigfd_lite.train.checkpoints`). Under torchrun the same loop runs DistributedDataParallel
(:mod:`aigfd_lite.runtime.distributed`): ``batch_size`` is the global batch, the ranking loss is formed over all of it, and
rank 0 alone reads and writes the run folder. CLI for long runs outside a notebook::

    python -m aigfd_lite.train --profile full --data-root /data [--run-name ours] [--max-steps N] [--set KEY=VALUE]
    torchrun --nproc_per_node 8 -m aigfd_lite.train --profile full --data-root /data
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .accumulation import two_pass_backward, with_resolved_accumulation
from ..pretext import augmented
from .checkpoints import load_checkpoint
from ..runtime import training_loader
from ..runtime import (Precision, barrier, choose_precision, gather, init_from_env, prepare,
                          shutdown)
from ..models import TASKS, ExifManipNet, build_model, prepare_batch
from ..pretext import bootstrap_intervals, evaluate_pretext  # noqa: F401 (re-exported: part of the public API)
from .run_lock import RunInUseError, hold_run_lock
from .step import HEADS, _at_least_float32, compute_losses  # noqa: F401 (compute_losses: re-exported)
from .run_settings import check_device_available
from .resumable import Job, run_resumable, stored_run
from .run_config import TrainConfig, parse_set_options
from .runs import (RUNTIME_FIELDS, EpochSampler, checkpoint_dir,  # noqa: F401 (re-exported)
                   config_difference, data_identity, data_source, move_aside_if_changed, with_data_identity)
from ..profiles import resolve
from ..pretext import build_pretext_dataset


def global_batch_loss(net: torch.nn.Module, images: torch.Tensor, tags: torch.Tensor, labels: torch.Tensor,
                      tcfg: TrainConfig, precision: Precision = Precision()) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 6 over the global batch: this rank's images go forward, then the five heads' outputs (with their
    gradients), tags and labels of every rank are gathered in rank order, so every rank computes the loss of the
    whole batch, pair for pair as one process would. In one process the gathers do nothing."""
    with precision.autocast(images.device):
        out = net(images)
    heads = gather(torch.stack([_at_least_float32(out[name]) for name in HEADS], 1))
    tags, labels = gather(tags, grad=False), gather(labels, grad=False)
    return compute_losses({name: heads[:, k] for k, name in enumerate(HEADS)}, tags, labels, tcfg)


def train_step(net: torch.nn.Module, images: torch.Tensor, tags: torch.Tensor, labels: torch.Tensor,
               tcfg: TrainConfig, precision: Precision, optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler) -> tuple[torch.Tensor, dict[str, float]]:
    """One optimiser step on a global batch: Eq. 6 over all of it, backward, (unscaled) AdamW step. With
    ``accumulation_steps > 1`` the batch goes through the network in micro-batches, its ranking pairs still formed
    over the whole batch (:func:`aigfd_lite.train.accumulation.two_pass_backward`)."""
    if not isinstance(tcfg.accumulation_steps, int):
        raise ValueError(f"accumulation_steps {tcfg.accumulation_steps!r} must be resolved to an integer first "
                         "(aigfd_lite.train.accumulation.with_resolved_accumulation; train() does it)")
    optimizer.zero_grad(set_to_none=True)
    if tcfg.accumulation_steps == 1:
        loss, terms = global_batch_loss(net, images, tags, labels, tcfg, precision)
        scaler.scale(loss).backward()
    else:
        loss, terms = two_pass_backward(net, images, tags, labels, tcfg, precision, scaler,
                                        tcfg.accumulation_steps)
    scaler.step(optimizer)
    scaler.update()
    return loss, terms


def train(tcfg: TrainConfig, run_dir: str | Path, dataset: torch.utils.data.Dataset | None = None,
          model: ExifManipNet | None = None, progress: bool = True,
          profile: Any = None) -> tuple[ExifManipNet, pd.DataFrame]:
    """Train (or resume training) into ``run_dir``; return the model (eval mode, CPU) and the log.

    Without ``dataset`` the data is built from ``profile`` (:func:`aigfd_lite.train.runs.data_source`: the profile whose
    settings the run's ``data_id`` was computed from, as :func:`fetch_or_train` passes it; None: ``tcfg.profile``
    with its defaults). A lite run whose ``data_id`` names another corpus than the one it would build is refused
    (``ValueError``) rather than trained on other data than its identity says.

    Under torchrun every rank calls this; each trains on its slice of every global batch, rank 0 alone writes, holding
    the run folder's lock (:mod:`aigfd_lite.train.run_lock`: a second trainer of the same folder gets ``RunInUseError``).
    """
    check_device_available(tcfg.device)
    with hold_run_lock(run_dir, init_from_env(tcfg.device)[0].main):
        return _train_locked(tcfg, Path(run_dir), dataset, model, progress, profile)


def _train_locked(tcfg: TrainConfig, run_dir: Path, dataset: torch.utils.data.Dataset | None,
                  model: ExifManipNet | None, progress: bool,
                  profile: Any = None) -> tuple[ExifManipNet, pd.DataFrame]:
    procs, device = init_from_env(tcfg.device)
    tcfg = dataclasses.replace(tcfg, world_size=procs.world_size)
    if tcfg.batch_size % procs.world_size:
        raise ValueError(f"batch_size {tcfg.batch_size} (the global batch) must divide evenly over "
                         f"{procs.world_size} processes")
    tcfg = with_resolved_accumulation(tcfg, device, procs.world_size, procs.main)
    progress = progress and procs.main
    if dataset is None:
        dataset = _pretext_data(tcfg, profile, procs)
    dataset = augmented(dataset, tcfg.augment, tcfg.seed)  # unchanged when augment is None (the paper)
    if model is None:
        model = build_model(tcfg.init, tcfg.feature_dim, tcfg.tasks, seed=tcfg.seed, backbone=tcfg.backbone)
    steps_per_epoch = len(dataset) // tcfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{len(dataset)} training items cannot fill one batch of {tcfg.batch_size}")
    job, module = _pretraining_job(tcfg, dataset, model, steps_per_epoch, device, procs, progress)
    stop_at = job.total_steps if tcfg.max_steps is None else min(job.total_steps, tcfg.max_steps)
    rows = run_resumable(job, tcfg, run_dir, stop_at=stop_at, main=procs.main, progress=progress)
    if module is not model:
        model.load_state_dict(module.state_dict())
    return model.cpu().eval(), pd.DataFrame(rows)


def _pretext_data(tcfg: TrainConfig, profile: Any, procs: Any) -> torch.utils.data.Dataset:
    """The run's training items, built from the profile its ``data_id`` names; each node's first process builds
    (and caches) them before the others read them."""
    source = data_source(profile, tcfg)  # what the data is built from is what its identity names
    if str(tcfg.data_id or "").startswith("lite-corpus:") and data_identity(source) != tcfg.data_id:
        raise ValueError(f"run data_id {tcfg.data_id!r} names another corpus than profile {source.name!r}'s "
                         f"settings build ({data_identity(source)!r}): pass the profile it was computed from")
    if procs.local_rank != 0:
        barrier()
    dataset = build_pretext_dataset(tcfg, "train", profile=source)
    if procs.local_rank == 0:
        barrier()
    return dataset


def _pretraining_job(tcfg: TrainConfig, dataset: torch.utils.data.Dataset, model: ExifManipNet,
                     steps_per_epoch: int, device: torch.device, procs: Any,
                     progress: bool) -> tuple[Job, torch.nn.Module]:
    """Chapter 4's part of the resumable loop (:class:`aigfd_lite.train.resumable.Job`): the optimiser, scheduler
    and scaler, the loader from a step on, :func:`train_step`; and the module that holds the trained weights."""
    total_steps = steps_per_epoch * tcfg.epochs
    cuda = device.type == "cuda"
    precision = choose_precision(device, tcfg.amp)
    channels_last = cuda or tcfg.backbone == "mobilenet_v2"  # depthwise convs: ~1.5x faster on CPU too
    if cuda:
        torch.backends.cudnn.benchmark = True
    model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    module, net = prepare(model, tcfg.batchnorm, procs, device)  # `model` itself in one process, else DDP
    optimizer = torch.optim.AdamW(module.parameters(), lr=tcfg.lr, betas=tcfg.betas, eps=tcfg.eps,
                                  weight_decay=tcfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    scaler = torch.amp.GradScaler("cuda", enabled=precision.grad_scaler)
    parts = {"model": module, "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler}

    def load_states(ckpt: dict[str, Any]) -> None:
        for name, part in parts.items():
            part.load_state_dict(ckpt[name])
        before = int(ckpt["config"].get("world_size", 1))
        if procs.main and before != procs.world_size:
            print(f"resuming a run of {before} process(es) with {procs.world_size}: same global batch"
                  + ("; BatchNorm statistics now per rank of another size" if tcfg.batchnorm == "local" else ""))

    def batches(step: int, stop_at: int) -> Iterator[Sequence[torch.Tensor]]:
        if step < stop_at and hasattr(dataset, "warm"):  # camera renderings (and pool) once, before workers fork
            dataset.warm(progress=progress)
        net.train()
        # one loader for the rest of the run: its workers start once (aigfd_lite.runtime.data_loader)
        yield from training_loader(dataset, batch_size=tcfg.batch_size, seed=tcfg.seed, start=step, stop=stop_at,
                                   num_workers=tcfg.num_workers, cuda=cuda, rank=procs.rank,
                                   world_size=procs.world_size,
                                   local_processes=int(os.environ.get("LOCAL_WORLD_SIZE", "1")))

    def step(batch: Sequence[torch.Tensor]) -> dict[str, Any]:
        images, tags, labels, _kinds = batch
        # uint8 to the device, normalised there (models.prepare_batch), lite and full alike
        images = prepare_batch(images, device, tcfg.input_size, channels_last)
        tags, labels = tags.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        loss, terms = train_step(net, images, tags, labels, tcfg, precision, optimizer, scaler)
        scheduler.step()
        return {"lr": optimizer.param_groups[0]["lr"], "loss": float(loss.detach()), **terms}

    def row(step: int, values: dict[str, Any], seconds: float, elapsed: float) -> dict[str, Any]:
        epoch = (step - 1) // steps_per_epoch  # the epoch the step was in, plus the fraction of it now done
        return {"step": step, "epoch": epoch + (step - epoch * steps_per_epoch) / steps_per_epoch, **values,
                "images_per_s": tcfg.batch_size / seconds, "elapsed_seconds": elapsed}

    job = Job(name=f"pretraining {tcfg.profile}", steps_per_epoch=steps_per_epoch, total_steps=total_steps,
              state_names=tuple(parts), states=lambda: {name: part.state_dict() for name, part in parts.items()},
              load_states=load_states, batches=batches, step=step, row=row)
    return job, module


def _finished_run(tcfg: TrainConfig, run_name: str) -> dict[str, Any]:
    final = checkpoint_dir(tcfg.profile, run_name) / "final.pt"
    if not final.is_file():
        raise FileNotFoundError(f"no finished run at {final}: train it with fetch_or_train(cfg, {run_name!r}) or "
                                f"`python -m aigfd_lite.train --profile {tcfg.profile} --run-name {run_name}`")
    return load_checkpoint(final)  # a damaged file: DamagedCheckpointError, naming it and what to do


def _model_of(ckpt: dict[str, Any]) -> ExifManipNet:
    model = ExifManipNet(feature_dim=int(ckpt["config"]["feature_dim"]), tasks=ckpt["config"]["tasks"],
                         backbone=ckpt["config"].get("backbone", "resnet50"))
    model.load_state_dict(ckpt["model"])
    model.train_config = ckpt["config"]
    return model.eval()


def load_trained(cfg: Any, run_name: str = "ours", **overrides: Any) -> ExifManipNet:
    """The finished model of a profile's run (eval mode, CPU); ``FileNotFoundError`` if it was never finished."""
    tcfg = cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_profile(cfg, **overrides)
    return _model_of(_finished_run(tcfg, run_name))


def fetch_or_train(cfg: Any, run_name: str = "ours", tasks: Sequence[str] = TASKS, progress: bool = True,
                   **overrides: Any) -> tuple[ExifManipNet, pd.DataFrame]:
    """Load a profile's finished run if it exists with the same settings, else train it (resuming a partial run).

    The data is compared by its identity (:func:`aigfd_lite.train.runs.data_identity`), never by the spelling of
    ``data_root``: the same data under another path is the same run. A finished or partial run with *other*
    settings is moved aside to ``<run_name>.stale-<time>`` (never deleted). Under torchrun rank 0 alone looks at
    and moves the folder; the others wait at a barrier, then follow its decision (a finished run's weights are
    sent to them).
    """
    tcfg = TrainConfig.from_profile(cfg, tasks=tasks, **overrides)  # bad settings: ValueError, before any data
    check_device_available(tcfg.device)
    procs, device = init_from_env(tcfg.device)
    tcfg = with_resolved_accumulation(tcfg, device, procs.world_size, procs.main)  # before comparing runs
    source = data_source(cfg, tcfg)  # one resolved profile: the run's data identity and its training data
    tcfg = with_data_identity(source, tcfg, procs.main)
    run_dir = checkpoint_dir(tcfg.profile, run_name)
    finished = stored_run(run_dir, tcfg, procs.main)  # a run with other settings is moved aside first
    if finished is not None:
        return _model_of(finished[0]), finished[1]
    return train(tcfg, run_dir, progress=progress, profile=source)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Pretrain the pretext network (chapter 4); resumes if interrupted. "
                                     "Under torchrun, trains with DistributedDataParallel.")
    parser.add_argument("--profile", default="full")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--run-name", default="ours")
    parser.add_argument("--tasks", default=None, help="comma-separated subset of exif,manipulation (default both; "
                        "--set tasks=... is the same)")
    parser.add_argument("--max-steps", type=int, default=None, metavar="N",
                        help="stop at optimiser step N with a checkpoint (rerun without it to continue)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    overrides = parse_set_options(args.set, parser.error)
    if args.max_steps is not None:
        if args.max_steps < 1:
            parser.error(f"--max-steps must be at least 1, got {args.max_steps}")
        overrides["max_steps"] = args.max_steps
    if args.tasks is not None and "tasks" in overrides:
        parser.error("give the tasks once: --tasks or --set tasks=..., not both")
    tasks = overrides.pop("tasks", args.tasks or ",".join(TASKS))
    if isinstance(tasks, str):
        tasks = tuple(t.strip() for t in tasks.split(",") if t.strip())
    try:  # bad settings, a damaged checkpoint, a run folder in use: one line and exit status 2, no traceback
        cfg = resolve(args.profile, data_root=args.data_root)
        model, log = fetch_or_train(cfg, args.run_name, tasks=tasks, progress=not args.no_progress, **overrides)
    except (ValueError, RunInUseError) as err:
        parser.error(str(err))
    finally:
        shutdown()
    if int(os.environ.get("RANK", "0")) == 0:
        last = log.iloc[-1].to_dict() if len(log) else {}
        print(json.dumps({"run_dir": str(checkpoint_dir(cfg.name, args.run_name)), "last_step": last}, default=str))


if __name__ == "__main__":
    main()
