"""Self-supervised pretraining (Sec. II-A, Eq. 6): a resumable training loop that runs on CPU (lite) and GPU (full).

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

One flat, typed configuration (:class:`TrainConfig`, built from a profile with overrides that reject unknown keys);
AdamW with the paper's settings and a per-step cosine schedule; loss = four all-pairs ranking losses + manipulation
loss (Eq. 6), each term logged. On CUDA: bf16 autocast where supported, else fp16 with a GradScaler; channels_last;
pinned memory; worker processes. A checkpoint (model, optimiser, scheduler, scaler, RNG states, step, data position)
is written atomically every epoch (``checkpoint_every_epochs``) and every ``checkpoint_every_steps`` steps;
rerunning resumes exactly, so killing the process loses at most the steps since the last checkpoint. CLI for long
runs outside a notebook::

    python -m aigfd_lite.train --profile full --data-root /data [--run-name ours] [--set batch_size=128 ...]
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import random
import shutil
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .losses import manipulation_loss, pairwise_ranking_loss, total_loss
from .models import TAGS, TASKS, ExifManipNet, build_model, check_tasks
from .pretext import bootstrap_intervals, evaluate_pretext  # re-exported: part of this module's public API
from .results import build_dir, write_json_atomic

#: Fields that change how a run executes but not what it computes: a resumed run may differ in these.
RUNTIME_FIELDS = ("device", "num_workers", "stop_after_steps", "amp")


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of one pretraining run. Defaults are the paper's (full profile)."""

    profile: str = "full"
    data_root: str | None = None
    seed: int = 42
    device: str = "auto"
    init: str = "random"  # "random", "imagenet" or a checkpoint path (EXIF-as-language)
    backbone: str = "resnet50"  # or "mobilenet_v2" (lite: ImageNet weights offline); see models.BACKBONES
    tasks: tuple[str, ...] = TASKS  # ("exif",), ("manipulation",) or both
    input_size: int = 224
    batch_size: int = 256
    epochs: int = 20
    lr: float = 1e-5
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    num_workers: int = 8
    max_train_items: int | None = None
    variants_per_kind: int | None = None  # None: every item manipulated afresh; k: a pool of k per face and kind
    checkpoint_every_steps: int = 500
    checkpoint_every_epochs: int = 1  # lite epochs take seconds: a 300 MB checkpoint each would dominate
    feature_dim: int = 768
    real_fraction: float = 0.5
    symmetric_resampling: bool = True
    simulate_camera: bool = True
    ranking_variant: str = "paper"  # Thurstone model: "paper" or "code" (reference notes, difference 1)
    manipulation_form: str = "fidelity"
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    stop_after_steps: int | None = None  # test hook: SIGKILL this process after that many steps (a crash)

    @classmethod
    def from_profile(cls, cfg: Any, **overrides: Any) -> "TrainConfig":
        """The run configuration of a :class:`~aigfd_lite.profiles.Profile`; unknown override keys raise."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown training setting(s) {unknown}; known: {sorted(known)}")
        values = {name: getattr(cfg, name) for name in known if hasattr(cfg, name)}
        values["profile"] = cfg.name
        if hasattr(cfg, "thurstone"):
            values["ranking_variant"] = cfg.thurstone
        values.update(overrides)
        values["tasks"] = check_tasks(values.get("tasks", TASKS))
        values["betas"] = tuple(float(b) for b in values["betas"])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


def checkpoint_dir(profile: str, run_name: str) -> Path:
    return build_dir() / "checkpoints" / profile / run_name


class EpochSampler(torch.utils.data.Sampler[int]):
    """A seeded permutation of the items for one epoch, starting at ``start`` (to resume mid-epoch)."""

    def __init__(self, n: int, seed: int, epoch: int, start: int = 0) -> None:
        self.n, self.start = n, start
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        self.order = torch.randperm(n, generator=generator).tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.order[self.start:])

    def __len__(self) -> int:
        return self.n - self.start


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _numpy_rng_state() -> list[Any]:
    """numpy's legacy global RNG state as plain values (``weights_only`` loads refuse numpy arrays)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _write_log(rows: list[dict[str, Any]], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pd.DataFrame(rows).to_csv(tmp, index=False)
    os.replace(tmp, path)


def _config_difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    keys = (set(a) | set(b)) - set(RUNTIME_FIELDS)
    return {k: (a.get(k), b.get(k)) for k in sorted(keys) if a.get(k) != b.get(k)}


def compute_losses(out: dict[str, torch.Tensor], tags: torch.Tensor, labels: torch.Tensor,
                   tcfg: TrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. 6: all-pairs ranking loss per tag + manipulation loss; terms of tasks not trained get weight 0."""
    ranking = {t: pairwise_ranking_loss(out[t].float(), tags[:, k].float(), tcfg.ranking_variant)
               for k, t in enumerate(TAGS)}
    manip = manipulation_loss(out["manipulation"].float(), labels.float(), form=tcfg.manipulation_form)
    weights = {t: 0.0 for t in TAGS} if "exif" not in tcfg.tasks else {}
    if "manipulation" not in tcfg.tasks:
        weights["manipulation"] = 0.0
    total = total_loss(ranking, manip, weights=weights)
    terms = {f"loss_{t}": float(v.detach()) for t, v in ranking.items()}
    terms["loss_manipulation"] = float(manip.detach())
    return total, terms


def train(tcfg: TrainConfig, run_dir: str | Path, dataset: torch.utils.data.Dataset | None = None,
          model: ExifManipNet | None = None, progress: bool = True) -> tuple[ExifManipNet, pd.DataFrame]:
    """Train (or resume training) into ``run_dir``; return the model (eval mode, CPU) and the log."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = tcfg.resolved_device()
    if dataset is None:
        from .pretext import build_pretext_dataset

        dataset = build_pretext_dataset(tcfg, "train")
    if model is None:
        model = build_model(tcfg.init, tcfg.feature_dim, tcfg.tasks, seed=tcfg.seed, backbone=tcfg.backbone)
    steps_per_epoch = len(dataset) // tcfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{len(dataset)} training items cannot fill one batch of {tcfg.batch_size}")
    total_steps = steps_per_epoch * tcfg.epochs
    cuda = device.type == "cuda"
    channels_last = cuda or tcfg.backbone == "mobilenet_v2"  # depthwise convs: ~1.5x faster on CPU too
    amp_dtype = None
    if cuda and tcfg.amp:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        torch.backends.cudnn.benchmark = True
    model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, betas=tcfg.betas, eps=tcfg.eps,
                                  weight_decay=tcfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    ckpt_path, log_path, state_path = run_dir / "last.pt", run_dir / "log.csv", run_dir / "state.json"
    step, rows, elapsed = 0, [], 0.0
    if ckpt_path.is_file():  # resume exactly where the last checkpoint left off
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        diff = _config_difference(ckpt["config"], tcfg.to_json())
        if diff:
            raise ValueError(f"{run_dir} holds a run with other settings {diff}: use another run_name")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        torch.set_rng_state(ckpt["torch_rng"])
        name, keys, pos, has_gauss, cached = ckpt["numpy_rng"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
        random.setstate((ckpt["python_rng"][0], tuple(ckpt["python_rng"][1]), ckpt["python_rng"][2]))
        step, elapsed = int(ckpt["step"]), float(ckpt["elapsed_seconds"])
        if log_path.is_file():  # rows logged after the checkpoint belong to steps that will be redone
            rows = [r for r in pd.read_csv(log_path).to_dict("records") if r["step"] <= step]

    def save(finished: bool = False) -> None:
        state = {"config": tcfg.to_json(), "step": step, "epoch": step // steps_per_epoch,
                 "step_in_epoch": step % steps_per_epoch, "steps_per_epoch": steps_per_epoch,
                 "total_steps": total_steps, "elapsed_seconds": elapsed, "finished": finished}
        _write_log(rows, log_path)
        _atomic_torch_save({**state, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                            "torch_rng": torch.get_rng_state(), "numpy_rng": _numpy_rng_state(),
                            "python_rng": random.getstate()}, ckpt_path)
        write_json_atomic(state_path, state)  # a human-readable mirror of the checkpoint's bookkeeping

    if step < total_steps and hasattr(dataset, "warm"):  # camera renderings (and pool) once, before workers fork
        dataset.warm(progress=progress)

    from tqdm.auto import tqdm

    steps_here = 0
    model.train()
    with tqdm(total=total_steps, initial=step, desc=f"pretraining {tcfg.profile}", unit="step",
              disable=not progress, mininterval=10) as bar:  # few refreshes: notebooks store each one
        while step < total_steps:
            epoch, in_epoch = divmod(step, steps_per_epoch)
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            sampler = EpochSampler(len(dataset), tcfg.seed, epoch, start=in_epoch * tcfg.batch_size)
            loader = torch.utils.data.DataLoader(
                dataset, batch_sampler=torch.utils.data.BatchSampler(sampler, tcfg.batch_size, drop_last=True),
                num_workers=tcfg.num_workers, pin_memory=cuda,
                prefetch_factor=4 if tcfg.num_workers else None)
            tick = time.perf_counter()
            for images, tags, labels, _kinds in loader:
                images = images.to(device, non_blocking=True)
                if channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                tags, labels = tags.to(device, non_blocking=True), labels.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    out = model(images)
                loss, terms = compute_losses(out, tags, labels, tcfg)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                step += 1
                steps_here += 1
                now = time.perf_counter()
                elapsed += now - tick
                rows.append({"step": step, "epoch": epoch + (step - epoch * steps_per_epoch) / steps_per_epoch,
                             "lr": optimizer.param_groups[0]["lr"], "loss": float(loss.detach()), **terms,
                             "images_per_s": len(images) / (now - tick), "elapsed_seconds": elapsed})
                tick = now
                bar.update(1)
                bar.set_postfix(loss=f"{rows[-1]['loss']:.3f}", refresh=False)
                epochs_done, in_epoch_now = divmod(step, steps_per_epoch)
                epoch_end = in_epoch_now == 0 and epochs_done % tcfg.checkpoint_every_epochs == 0
                if epoch_end or step % tcfg.checkpoint_every_steps == 0 or step == total_steps:
                    save(finished=step == total_steps)
                if tcfg.stop_after_steps is not None and steps_here >= tcfg.stop_after_steps:
                    os.kill(os.getpid(), signal.SIGKILL)  # simulate a crash: nothing after the last checkpoint
                if step >= total_steps:
                    break
    final = run_dir / "final.pt"
    if not final.is_file():
        _atomic_torch_save({"config": tcfg.to_json(), "model": model.state_dict(), "step": step,
                            "elapsed_seconds": elapsed}, final)
    return model.cpu().eval(), pd.DataFrame(rows)


def load_trained(cfg: Any, run_name: str = "ours", **overrides: Any) -> ExifManipNet:
    """The finished model of a profile's run (eval mode, CPU); ``FileNotFoundError`` if it was never finished."""
    tcfg = cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_profile(cfg, **overrides)
    final = checkpoint_dir(tcfg.profile, run_name) / "final.pt"
    if not final.is_file():
        raise FileNotFoundError(f"no finished run at {final}: train it with fetch_or_train(cfg, {run_name!r}) or "
                                f"`python -m aigfd_lite.train --profile {tcfg.profile} --run-name {run_name}`")
    ckpt = torch.load(final, map_location="cpu", weights_only=True)
    model = ExifManipNet(feature_dim=int(ckpt["config"]["feature_dim"]), tasks=ckpt["config"]["tasks"],
                         backbone=ckpt["config"].get("backbone", "resnet50"))
    model.load_state_dict(ckpt["model"])
    model.train_config = ckpt["config"]
    return model.eval()


def fetch_or_train(cfg: Any, run_name: str = "ours", tasks: Sequence[str] = TASKS, progress: bool = True,
                   **overrides: Any) -> tuple[ExifManipNet, pd.DataFrame]:
    """Load a profile's finished run if it exists with the same settings, else train it (resuming a partial run).

    A finished or partial run with *other* settings is moved aside to ``<run_name>.stale-<time>`` (never deleted).
    """
    tcfg = TrainConfig.from_profile(cfg, tasks=tasks, **overrides)
    run_dir = checkpoint_dir(tcfg.profile, run_name)
    stored = None
    for name in ("final.pt", "last.pt"):
        if (run_dir / name).is_file():
            stored = torch.load(run_dir / name, map_location="cpu", weights_only=True)["config"]
            break
    if stored is not None and _config_difference(stored, tcfg.to_json()):
        stale = run_dir.with_name(f"{run_name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
        print(f"settings changed {_config_difference(stored, tcfg.to_json())}: moving {run_dir} to {stale}")
        shutil.move(str(run_dir), stale)
    if (run_dir / "final.pt").is_file():
        log = pd.read_csv(run_dir / "log.csv") if (run_dir / "log.csv").is_file() else pd.DataFrame()
        return load_trained(tcfg, run_name), log
    return train(tcfg, run_dir, progress=progress)


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Pretrain the pretext network (chapter 4); resumes if interrupted.")
    parser.add_argument("--profile", default="full")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--run-name", default="ours")
    parser.add_argument("--tasks", default="exif,manipulation", help="comma-separated subset of exif,manipulation")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    from .profiles import resolve

    overrides = {}
    for item in args.set:
        if "=" not in item:
            parser.error(f"--set expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key.strip()] = _parse_value(value.strip())
    cfg = resolve(args.profile, data_root=args.data_root)
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    try:
        model, log = fetch_or_train(cfg, args.run_name, tasks=tasks, progress=not args.no_progress, **overrides)
    except ValueError as err:
        parser.error(str(err))
    last = log.iloc[-1].to_dict() if len(log) else {}
    print(json.dumps({"run_dir": str(checkpoint_dir(cfg.name, args.run_name)), "last_step": last}, default=str))


if __name__ == "__main__":
    main()
