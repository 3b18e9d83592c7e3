"""BLADES pretraining: 11 task losses, task weights learned by bi-level optimisation, resumable (chapter 7).

``fetch_or_train_blades(cfg, run_name="blades", bilevel=True) -> (model, log)`` loads a finished run or trains it
(resuming a partial one). ``bilevel=False`` trains with equal weights (the lite comparison). Checkpoints (model,
both optimisers, scheduler, task weights, RNG states, step) are written atomically every epoch and every
``checkpoint_every_steps`` steps by chapter 4's resumable loop (:func:`aigfd_lite.train.run_resumable`, given BLADES'
step); a killed run resumes bit-exactly. Per step: the training batch is the next batch of one seeded iterator over the training items, the
validation batch the next batch of a second iterator (another seed) over the same items (BLADES' choice).

Settings (:class:`BladesConfig`: chapter 4's shared settings and BLADES' own; BLADES' values in
:data:`BLADES_SETTINGS`): full is BLADES' (batch 48, 224 px, 20 epochs, inner AdamW lr 1e-5 with a cosine
schedule, outer Adam lr 3e-4, CLIP text tower, image tower from ``cfg.init``); lite fine-tunes chapter 4's trained
lite network for a few epochs with a learned prompt table. CLI::

    python -m aigfd_lite.blades --profile full --data-root /data [--run-name blades] [--equal-weights] [--set k=v]
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Optional

import pandas as pd
import torch
from torch import nn

from .bilevel import TaskWeights, bilevel_step
from .tasks import LOSS_NAMES, task_losses  # noqa: F401 - part of this module's API
from .joint_embedding import BladesNet, JointEmbeddingHeads, build_text_tower
from ..runtime import choose_precision
from ..train import (BLADES_RULES, EpochSampler, Job, RunConfig, check_device_available, checkpoint_dir,
                     hold_run_lock, load_checkpoint, parse_set_options, run_resumable, stored_run)
from ..profiles import resolve
from .data import build_blades_dataset
from ..train import with_data_identity
from ..train import fetch_or_train
from ..models import build_model

#: BLADES' own values of the shared settings (:class:`aigfd_lite.train.RunConfig`), over the profile's: ``"*"`` for
#: every profile, then per profile.
BLADES_SETTINGS: dict[str, dict[str, Any]] = {
    "*": dict(ranking_variant="code"),  # BLADES' code: Phi(2x); chapter 4 follows the profile's `thurstone`
    "full": dict(batch_size=48, input_size=224, epochs=20, lr=1e-5, outer_lr=3e-4, text_tower="clip",
                 checkpoint_every_steps=500),
    # lite: ~20 steps per run; outer lr raised so the weights can move at all in so few steps (chapter 7 says so)
    "lite": dict(batch_size=32, epochs=4, lr=1e-4, outer_lr=1e-2, text_tower="learned", init="chapter4",
                 checkpoint_every_steps=1000, variants_per_kind=2, num_workers=0),
}


@dataclass(frozen=True)
class BladesConfig(RunConfig):
    """Every setting of one BLADES run: the shared ones (:class:`aigfd_lite.train.RunConfig`) and BLADES' own. Made
    from a profile by :meth:`~aigfd_lite.train.RunConfig.from_profile`, which applies :data:`BLADES_SETTINGS`."""

    JOB: ClassVar[str] = "BLADES"
    RULES: ClassVar[Mapping[str, Any]] = BLADES_RULES
    JOB_SETTINGS: ClassVar[Mapping[str, Mapping[str, Any]]] = BLADES_SETTINGS

    bilevel: bool = True
    outer_lr: float = 3e-4
    focal_gamma: float = 2.0
    text_tower: str = "clip"


def build_image_tower(cfg: Any, init: str = "random", feature_dim: int = 768, seed: int = 42) -> nn.Module:
    """The image tower: chapter 4's backbone (``getattr(cfg, "backbone", "resnet50")``) -> ``feature_dim``.

    ``init="chapter4"`` starts from chapter 4's trained network of profile ``cfg`` (fetch-or-train); otherwise
    :func:`aigfd_lite.models.build_model` with ``init`` and the profile's backbone (lite: MobileNetV2, full:
    ResNet-50, as in chapter 4).
    """
    if init == "chapter4":
        return fetch_or_train(cfg, "ours", progress=False)[0].backbone
    backbone = getattr(cfg, "backbone", "resnet50")
    return build_model(init, feature_dim, seed=seed, backbone=backbone).backbone


def build_blades_model(image_tower: nn.Module, text_tower: str = "learned", feature_dim: int = 768,
                       seed: int = 42, state: Optional[dict] = None) -> BladesNet:
    heads = JointEmbeddingHeads(build_text_tower(text_tower, feature_dim, seed, state=state))
    return BladesNet(image_tower, heads, feature_dim)


def _batches(dataset, order: list[int], start: int, bcfg: BladesConfig, cuda: bool):
    sampler = torch.utils.data.BatchSampler(order[start * bcfg.batch_size:], bcfg.batch_size, drop_last=True)
    return iter(torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=bcfg.num_workers,
                                            pin_memory=cuda))


def train_blades(bcfg: BladesConfig, run_dir: str | Path, dataset, model: BladesNet,
                 progress: bool = True) -> tuple[BladesNet, pd.DataFrame]:
    """Train (or resume) into ``run_dir``, holding its lock (:mod:`aigfd_lite.train.run_lock`); returns the model (eval,
    CPU) and the per-step log. The loop is chapter 4's (:func:`aigfd_lite.train.run_resumable`); the step is
    BLADES' bi-level one."""
    check_device_available(bcfg.device)
    with hold_run_lock(run_dir):
        device = torch.device(bcfg.resolved_device())
        spe = len(dataset) // bcfg.batch_size
        if spe == 0:
            raise ValueError(f"{len(dataset)} training items cannot fill one batch of {bcfg.batch_size}")
        model.to(device)
        rows = run_resumable(_blades_job(bcfg, dataset, model, spe, device), bcfg, Path(run_dir),
                             progress=progress)
    return model.cpu().eval(), pd.DataFrame(rows)


def _blades_job(bcfg: BladesConfig, dataset, model: BladesNet, spe: int, device: torch.device) -> Job:
    """BLADES' part of the resumable loop: the inner optimiser and scheduler, the task weights (the outer problem),
    a training and a validation batch per step, :func:`aigfd_lite.blades.bilevel.bilevel_step`."""
    total_steps = spe * bcfg.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=bcfg.lr, betas=bcfg.betas, eps=bcfg.eps,
                                  weight_decay=bcfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    weights = TaskWeights(LOSS_NAMES, lr=bcfg.outer_lr) if bcfg.bilevel else None
    precision = choose_precision(device)
    parts = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    if weights is not None:
        parts.update(weights=weights, weights_optimizer=weights.optimizer)

    def losses_of(net: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        # bf16 autocast from compute capability 8.0 only; below it fp32, since the bi-level step has no GradScaler
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision.dtype == torch.bfloat16):
            out = net(batch[0])
        return task_losses(out, batch, bcfg.focal_gamma, bcfg.ranking_variant)

    def val_loss(net: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        return losses_of(net, batch)[LOSS_NAMES.index("manipulation")]

    def batches(step: int, stop_at: int) -> Iterator[tuple[list[torch.Tensor], list[torch.Tensor]]]:
        if step < stop_at and hasattr(dataset, "warm"):
            dataset.warm(progress=False)
        model.train()
        cuda = device.type == "cuda"
        while step < stop_at:  # per epoch: the training batches and, from another order, the validation batches
            epoch, in_epoch = divmod(step, spe)
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            train_it = _batches(dataset, EpochSampler(len(dataset), bcfg.seed, epoch).order, in_epoch, bcfg, cuda)
            val_it = _batches(dataset, EpochSampler(len(dataset), bcfg.seed + 7919, epoch).order, in_epoch, bcfg,
                              cuda)
            for pair in zip(train_it, val_it):
                yield pair
                step += 1

    def step(pair: tuple[list[torch.Tensor], list[torch.Tensor]]) -> dict[str, Any]:
        train_batch = [t.to(device, non_blocking=True) for t in pair[0]]
        val_batch = [t.to(device, non_blocking=True) for t in pair[1]]
        out = bilevel_step(model, optimizer, weights, losses_of, train_batch, val_loss, val_batch)
        scheduler.step()
        lam = weights.as_dict() if weights is not None else dict.fromkeys(LOSS_NAMES, 1.0)
        return {"lr": optimizer.param_groups[0]["lr"], "loss": out["total"],
                "val_loss": out.get("val_loss", float("nan")),
                **{f"loss_{n}": float(v) for n, v in zip(LOSS_NAMES, out["losses"])},
                **{f"lambda_{n}": v for n, v in lam.items()}}

    def row(step: int, values: dict[str, Any], seconds: float, elapsed: float) -> dict[str, Any]:
        return {"step": step, "epoch": step / spe, **values, "elapsed_seconds": elapsed}

    def load_states(ckpt: dict[str, Any]) -> None:
        for name, part in parts.items():
            part.load_state_dict(ckpt[name])

    return Job(name=f"BLADES {bcfg.profile}", steps_per_epoch=spe, total_steps=total_steps,
               state_names=tuple(parts), states=lambda: {name: part.state_dict() for name, part in parts.items()},
               load_states=load_states, batches=batches, step=step, row=row)


def load_blades(bcfg: BladesConfig, run_name: str = "blades") -> BladesNet:
    """The finished model of a run (eval, CPU); ``FileNotFoundError`` if it was never finished."""
    final = checkpoint_dir(bcfg.profile, run_name) / "final.pt"
    if not final.is_file():
        raise FileNotFoundError(f"no finished BLADES run at {final}: train it with fetch_or_train_blades(cfg, "
                                f"{run_name!r}) or `python -m aigfd_lite.blades --profile {bcfg.profile}`")
    return _model_of(bcfg, load_checkpoint(final))


def _model_of(bcfg: BladesConfig, ckpt: dict[str, Any]) -> BladesNet:
    tower = build_image_tower(bcfg, "random", bcfg.feature_dim, bcfg.seed)  # the architecture; weights below
    model = build_blades_model(tower, bcfg.text_tower, bcfg.feature_dim, bcfg.seed, state=ckpt["model"])
    model.load_state_dict(ckpt["model"])
    return model.eval()


def fetch_or_train_blades(cfg: Any, run_name: str = "blades", bilevel: bool = True, progress: bool = True,
                          dataset: Any = None, **overrides: Any) -> tuple[BladesNet, pd.DataFrame]:
    """Load a profile's finished BLADES run with the same settings, else train it (resuming a partial run).

    The data is compared by its identity (:func:`aigfd_lite.train.runs.data_identity`), not by the spelling of its path.
    A run with other settings is moved aside to ``<run_name>.stale-<time>``, never deleted
    (:func:`aigfd_lite.train.stored_run`, as chapter 4's :func:`~aigfd_lite.train.fetch_or_train` does).
    """
    bcfg = BladesConfig.from_profile(cfg, bilevel=bilevel, **overrides)  # bad settings: ValueError, before any data
    check_device_available(bcfg.device)
    bcfg = with_data_identity(cfg, bcfg)
    run_dir = checkpoint_dir(bcfg.profile, run_name)
    finished = stored_run(run_dir, bcfg)
    if finished is not None:
        return _model_of(bcfg, finished[0]), finished[1]
    if dataset is None:
        dataset = build_blades_dataset(bcfg, "train")
    tower = build_image_tower(cfg, bcfg.init, bcfg.feature_dim, bcfg.seed)
    model = build_blades_model(tower, bcfg.text_tower, bcfg.feature_dim, bcfg.seed)
    return train_blades(bcfg, run_dir, dataset, model, progress=progress)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="BLADES pretraining (chapter 7); resumes if interrupted.")
    parser.add_argument("--profile", default="full")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--run-name", default="blades")
    parser.add_argument("--equal-weights", action="store_true", help="no bi-level optimisation: weights 1")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    overrides = parse_set_options(args.set, parser.error)
    try:
        cfg = resolve(args.profile, data_root=args.data_root)
        _, log = fetch_or_train_blades(cfg, args.run_name, bilevel=not args.equal_weights,
                                       progress=not args.no_progress, **overrides)
    except (ValueError, RuntimeError, OSError) as err:  # bad settings, no CLIP offline, missing data, run in use
        parser.error(str(err))
    last = log.iloc[-1].to_dict() if len(log) else {}
    print(json.dumps({"run_dir": str(checkpoint_dir(cfg.name, args.run_name)), "last_step": last}, default=str))


if __name__ == "__main__":
    main()
